"""learner.promotion: what a gate-passing version is published as (no training needed)."""

from __future__ import annotations

import pytest

from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.errors import SettingsError
from driftloop.schemas.settings import Settings


@pytest.mark.parametrize(("promotion", "status"), [(None, VersionStatus.PROMOTED),
                                                   ("gate", VersionStatus.PROMOTED),
                                                   ("canary", VersionStatus.CANDIDATE)])
def test_a_version_that_passes_the_gate_is_promoted_or_canaried(tmp_path, promotion, status):
    learner = {"device": "cpu"} | ({"promotion": promotion} if promotion else {})
    settings = Settings(artifacts={"store_url": str(tmp_path)}, learner=learner)
    updater = IncrementalUpdater(settings, models=ResidentModels(capacity=1))
    assert updater.passed_status is status


@pytest.mark.parametrize("bad", ["ab", "PROMOTED", "", 1])
def test_an_unknown_promotion_mode_is_refused(bad):
    with pytest.raises(SettingsError, match=r"learner\.promotion"):
        Settings(learner={"promotion": bad})
