"""scikit-learn estimators (Pipeline and ColumnTransformer included), saved with skops.

skops refuses to construct any type it is not told to trust. The trust list comes from the
loading process's configuration (``Settings.trusted_types``) plus ``BUILTIN_TRUSTED`` below,
never from the model file: a file that names another type is refused before any object in
it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import UnsafeModel
from shipyard.registry.flavors._base import LoadOptions, Saved, model_file, module_of
from shipyard.registry.flavors._manifest import Manifest

FILE = "model.skops"

# Types that fitted scikit-learn models commonly hold and that skops does not trust by
# default; each is plain data or an sklearn internal that runs no user-supplied code.
# skops's own defaults (scikit-learn's public estimators, numpy arrays) are trusted as well.
BUILTIN_TRUSTED: frozenset[str] = frozenset(
    {
        "builtins.object",
        "builtins.slice",
        "collections.OrderedDict",
        "collections.defaultdict",
        "numpy.dtype",
        "numpy.float32",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "numpy.bool_",
        "numpy.str_",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.tree._tree.Tree",
    }
)


def is_estimator(obj: object) -> bool:
    if module_of(obj) != "sklearn" and not hasattr(obj, "_get_tags"):
        # Cheap pre-check: avoids importing sklearn for objects that cannot be estimators.
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def dump(obj: Any, path: Path) -> None:
    import skops.io as sio

    try:
        sio.dump(obj, path)
    except (TypeError, ValueError, NotImplementedError) as exc:
        from shipyard.errors import InvalidArgument

        raise InvalidArgument(
            f"skops cannot save this {type(obj).__name__}: {exc}", field="model"
        ) from None


def safe_load(path: Path, options: LoadOptions) -> Any:
    """Load a skops file, refusing it if it names a type outside the trust list."""
    import skops.io as sio

    # Checked and loaded from the same bytes, so the file cannot change in between.
    data = path.read_bytes()
    untrusted = sio.get_untrusted_types(data=data)
    allowed = BUILTIN_TRUSTED | set(options.trusted_types)
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        raise UnsafeModel(
            f"{path.name} contains types that are not trusted: {refused}. If you trust "
            "them, add them to SHIPYARD_TRUSTED_TYPES (comma-separated) and load again",
            types=refused,
        )
    return sio.loads(data, trusted=list(untrusted))


class SklearnFlavor:
    name = "sklearn"

    def matches(self, obj: object) -> bool:
        return is_estimator(obj)

    def save(self, obj: Any, model_dir: Path) -> Saved:
        import sklearn

        dump(obj, model_dir / FILE)
        return Saved("scikit-learn", sklearn.__version__, ("scikit-learn", "skops"), {"file": FILE})

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        return safe_load(model_file(model_dir, manifest, FILE), options)
