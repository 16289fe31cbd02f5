"""Importing this module pauses Python's cyclic garbage collector until :func:`imports_done`; an app makes it
its first import and calls ``imports_done()`` after its imports::

    import eks_ml.startup  # noqa: F401  (first: no garbage collection while aws-cdk-lib loads)
    ...  # the app's imports
    eks_ml.startup.imports_done()

Importing aws-cdk-lib and the eks-ml modules creates some 175,000 objects (jsii's generated classes and their
type hints) that live until the process exits. Python's collector walks every tracked object again in each
full collection, and the default app's imports triggered three of them: 0.14 of its 0.9 Python CPU seconds
(measured with ``gc.callbacks``), and about 0.2 s less Python CPU once paused (those walks also evict the
caches the imports run in). ``imports_done()`` moves what exists then into the permanent generation
(``gc.freeze``), which later collections skip, and resumes collecting: the synth's own garbage is collected
as before. Like :mod:`eks_ml.bundled_node` this is the app's choice of process state, so the library never
makes it; ``import eks_ml`` alone changes nothing. An app that never calls ``imports_done()`` runs without
cyclic garbage collection, which a one-shot synth survives but a long-lived process should not.
"""

from __future__ import annotations

import gc


def imports_done() -> None:
    """Leave what the imports created out of later collections, and resume collecting."""
    gc.freeze()
    gc.enable()


gc.disable()
