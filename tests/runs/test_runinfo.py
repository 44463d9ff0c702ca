"""What a run records about the settings that change its speed."""

from iwae_lib import runinfo


def test_speed_settings_lists_exactly_the_set_variables(monkeypatch):
    for name in runinfo.SPEED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert runinfo.speed_settings() == {}
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "2")
    monkeypatch.setenv("UNRELATED_VARIABLE", "1")
    assert runinfo.speed_settings() == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTEROP_THREADS": "2"}
    assert runinfo.environment()["speed_settings"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTEROP_THREADS": "2"}
