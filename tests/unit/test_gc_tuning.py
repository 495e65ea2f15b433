"""The collector's setting while apps serve: set by the first, kept while any serves, restored after.

Checked in a fresh interpreter: the test process may have apps of other tests serving."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent(
    """
    import gc
    from infra.gc_tuning import YOUNG_COLLECTION_EVERY, settled_for_serving

    before = gc.get_threshold()
    assert before[0] != YOUNG_COLLECTION_EVERY and gc.get_freeze_count() == 0
    kept_alive = [[] for _ in range(100)]  # tracked by the collector
    with settled_for_serving():
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *before[1:])
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept_alive), frozen  # what existed when serving began is out of sight
        with settled_for_serving():  # a second app, side by side
            assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY  # the first app still serves
        assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == before, gc.get_threshold()
    assert gc.get_freeze_count() == 0
    print("ok")
    """
)


def test_apps_serving_side_by_side_share_the_setting_and_the_last_restores_the_collector() -> None:
    ran = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ok"
