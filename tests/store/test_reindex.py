"""A gallery survives a model change: templates re-extracted from the encrypted images."""

import pytest
from sqlalchemy import select

from tests.conftest import demo_path
from tests.store.test_enrol_search import enrol, make_gallery, search
from vigil.services.reindex import reindex
from vigil.store.schema import Collection, TemplateRow


def test_reindex_to_the_dlib_pack(vigil, admin, tmp_path):
    pytest.importorskip("dlib", reason="the dlib pack is an optional extra")
    coll = make_gallery(vigil, admin)
    obama = enrol(vigil, admin, coll, "obama.jpg", "Barack Obama")
    enrol(vigil, admin, coll, "biden.jpg", "Joe Biden")
    summary = reindex(vigil, admin, "dlib", kind="gallery", name="custody", show_progress=False)
    assert summary["templates_made"] == 2 and summary["old_templates_deleted"] == 2
    with vigil.store.session() as s:
        row = s.get(Collection, coll["id"])
        assert row.pack == "dlib" and row.model_id == "dlib-resnet-v1-flip"
        assert {t.model_id for t in s.scalars(select(TemplateRow))} == {"dlib-resnet-v1-flip"}
    result = search(vigil, admin, coll, demo_path("obama_speech.jpg", tmp_path), "C", "after a model change", 2)
    assert result["faces"][0]["candidates"][0]["subject_id"] == obama["subject_id"]
    assert result["model_id"] == "dlib-resnet-v1-flip"


def test_a_watchlist_cannot_be_reindexed_to_a_pack_that_cannot_run_live(vigil, admin):
    from vigil.errors import ModelError

    watchlist = make_gallery(vigil, admin, "wanted", "watchlist")
    with pytest.raises(ModelError, match="cannot run live"):
        reindex(vigil, admin, "dlib", kind="watchlist", name="wanted", show_progress=False)
    with vigil.store.session() as s:
        assert s.get(Collection, watchlist["id"]).pack == "sface"  # untouched
