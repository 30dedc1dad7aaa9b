"""A gallery survives a model change: templates re-extracted from the encrypted images."""

import pytest
from sqlalchemy import select

from tests.conftest import demo_bytes, demo_path
from tests.store.test_enrol_search import make_gallery
from vigil.retro.enrolment import Enroller, EnrolItem
from vigil.retro.reindex import reindex
from vigil.retro.search import SearchRequest, run_search
from vigil.store.schema import Collection, TemplateRow


def test_reindex_to_the_dlib_pack(vigil, admin, tmp_path):
    pytest.importorskip("dlib", reason="the dlib pack is an optional extra")
    coll = make_gallery(vigil, admin)
    enroller = Enroller(vigil.store, vigil.engine(), vigil.indexes, admin, coll)
    obama = enroller.enrol_bytes(demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    enroller.enrol_bytes(demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    summary = reindex(vigil, admin, "dlib", [coll], show_progress=False)
    assert summary["templates_made"] == 2 and summary["old_templates_deleted"] == 2
    with vigil.store.session() as s:
        row = s.get(Collection, coll.id)
        assert row.pack == "dlib" and row.model_id == "dlib-resnet-v1-flip"
        assert {t.model_id for t in s.scalars(select(TemplateRow))} == {"dlib-resnet-v1-flip"}
        coll = row
    result = run_search(vigil, admin, SearchRequest(coll, "C", "after a model change", 2),
                        path=demo_path("obama_speech.jpg", tmp_path))
    assert result["faces"][0]["candidates"][0]["subject_id"] == obama.subject_id
    assert result["model_id"] == "dlib-resnet-v1-flip"


def test_a_watchlist_cannot_be_reindexed_to_a_pack_that_cannot_run_live(vigil, admin):
    from vigil.errors import ModelError
    from vigil.store.collections import create_collection

    engine = vigil.engine()
    with vigil.store.session() as s:
        watchlist = create_collection(s, vigil.store.audit, admin, "watchlist", "wanted", pack="sface",
                                      model_id=engine.model_id, purpose="test")
    with pytest.raises(ModelError, match="cannot run live"):
        reindex(vigil, admin, "dlib", [watchlist], show_progress=False)
    with vigil.store.session() as s:
        assert s.get(Collection, watchlist.id).pack == "sface"  # untouched
