"""Hostile inputs give exceptions or counts, never a crash; errors are the Python
exceptions a caller expects."""

from __future__ import annotations

import errno
import fcntl
import math
import os
import socket
import warnings
from pathlib import Path

import httpx
import pytest
import tars_telemetry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import MultiprocessModeUnavailable, SpanContext, Telemetry

HUGE = "x" * (4 * 1024 * 1024)
# Label values are kept whole, once per series that carries them: a long one, not a huge
# one, keeps the parsers' run short.
LONG = "y" * (64 * 1024)


def parses(tel: Telemetry) -> None:
    text, _ = tel.render()
    list(parse_text(text.decode()))
    om, _ = tel.render("application/openmetrics-text")
    list(parse_openmetrics(om.decode()))


def test_bad_names_and_labels_are_value_errors() -> None:
    tel = Telemetry(traces=False)
    for bad in ["", "1abc", "has space", "__reserved", "nul\0name", HUGE + " "]:
        with pytest.raises(ValueError):
            tel.counter(bad, "help")
    with pytest.raises(ValueError):
        tel.counter("ok_name", "help", ["le", "le"])
    with pytest.raises(ValueError):
        tel.histogram("h_bad", "help", [], [2.0, 1.0])
    with pytest.raises(ValueError):
        tel.histogram("h_nan", "help", [], [float("nan")])
    with pytest.raises(ValueError):
        tel.counter("tars_rag_queries", "a catalog family")
    c = tel.counter("c_one", "help", ["a"])
    with pytest.raises(ValueError):
        c.labels()
    with pytest.raises(ValueError):
        c.labels("x", "y")
    with pytest.raises(ValueError):
        c.labels(b="x")
    with pytest.raises(ValueError), tel.rag.phase("not-a-phase"):
        pass
    with pytest.raises(ValueError), tel.db.query("drop table"):
        pass
    with pytest.raises(ValueError):
        tel.errors.record("not-a-component", "x")
    with pytest.raises(ValueError):
        tel.websocket.message("sideways")
    parses(tel)


def test_wrong_types_are_type_errors() -> None:
    tel = Telemetry(traces=False)
    c = tel.counter("c_types", "help", ["a"])
    for bad in [1, None, b"bytes", object()]:
        with pytest.raises(TypeError):
            c.labels(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tel.counter(123, "help")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tel.llm(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.labels("a").inc("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Telemetry(service_name=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tel.histogram("h_types", "help", [], ["a"])  # type: ignore[list-item]
    parses(tel)


def test_huge_strings_nul_and_surrogates_never_crash() -> None:
    tel = Telemetry(traces=False)
    c = tel.counter("c_values", "help", ["v"])
    for v in [LONG, "nul\0inside", "new\nline", 'quote"back\\slash', "é☃"]:
        c.labels(v).inc()
    with pytest.raises(UnicodeEncodeError):
        c.labels("\ud800").inc()
    for model in [LONG, "nul\0model", ""]:
        try:
            with tel.llm(model).call() as call:
                call.add_output_tokens(1)
        except ValueError:
            pass
    with tel.redis.command(HUGE + "\0") as cmd:
        cmd.hit()
    with tel.db.query("select", HUGE):
        pass
    tel.errors.record("other", LONG)
    try:
        tel.set_app_info(LONG, "\0", "m")
    except ValueError:
        pass
    assert SpanContext.from_traceparent(HUGE) is None
    assert SpanContext.from_traceparent("\0" * 55) is None
    parses(tel)


def test_nan_infinite_and_negative_values_are_counted_not_raised() -> None:
    tel = Telemetry(traces=False)
    c = tel.counter("c_nan", "help")
    g = tel.gauge("g_nan", "help")
    h = tel.histogram("h_nan_values", "help", [], [1.0])
    for v in [math.nan, -1.0, math.inf, -math.inf]:
        c.inc(v)
        g.set(v)
        h.observe(v)
    with tel.rag.query() as q:
        q.set_relevance(math.nan)
    with tel.llm("m").call() as call:
        call.add_output_tokens(-5)
        call.set_input_tokens(-1)
    # A negative count is no count: ignored, so the last good value stands.
    tel.vector_store.set_documents(7)
    tel.documents.set_queue_length(3)
    tel.db.set_pool(2, 10)
    with tel.rag.query() as q, tel.documents.ingest() as doc:
        q.set_sources(-1)
        doc.set_chunks(2)
        doc.set_chunks(-2)
    tel.vector_store.set_documents(-1)
    tel.documents.set_queue_length(-3)
    tel.db.set_pool(-1, 10)
    tel.redis.set_memory(-1, -1)
    tel.embeddings.add_generated(-4)
    text, _ = tel.render()
    assert b"c_nan_total NaN" not in text
    assert h.labels().count() == 0
    lines = text.decode().splitlines()
    for want in [
        "tars_vector_store_documents 7",
        "tars_document_queue_length 3",
        "tars_document_chunks_sum 2",
        "tars_embeddings_generated_total 0",
    ]:
        assert want in lines, want
    parses(tel)


def test_series_budget_overflow_is_counted() -> None:
    tel = Telemetry(traces=False, series_budget=10)
    c = tel.counter("c_many", "help", ["v"])
    for i in range(100):
        c.labels(str(i)).inc()
    text, _ = tel.render()
    assert b"__overflow__" in text
    parses(tel)


def test_address_in_use_is_an_oserror_with_errno() -> None:
    tel = Telemetry(traces=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError) as e:
            tel.serve(f"127.0.0.1:{port}")
        assert e.value.errno == errno.EADDRINUSE
    srv = tel.serve("127.0.0.1:0")
    try:
        r = httpx.get(f"http://127.0.0.1:{srv.port}/metrics", timeout=10)
        assert r.status_code == 200 and b"tars_rag_queries_total" in r.content
    finally:
        srv.shutdown()
        srv.shutdown()


def test_incompatible_live_file_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live worker's file that is not ours (another version's, say): refused, never misread.
    monkeypatch.setenv(tars_telemetry.MULTIPROC_DIR_ENV, str(tmp_path))
    alien = tmp_path / "worker-1-1.tars"
    alien.write_bytes(b"\x07" * 8192)
    fd = os.open(alien, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(MultiprocessModeUnavailable, match="worker-1-1.tars") as e:
            Telemetry(service_name="tars-backend", traces=False)
        assert isinstance(e.value, RuntimeError)
        with pytest.raises(MultiprocessModeUnavailable, match="worker-1-1.tars"):
            Telemetry(traces=False, multiproc_dir=tmp_path)
    finally:
        os.close(fd)
    # Once its holder is gone, the first worker of a new run clears it.
    tel = Telemetry(traces=False)
    assert tel.multiproc_dir == str(tmp_path)
    assert not alien.exists()


def test_unusable_multiprocess_dir_is_refused_with_the_os_error(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    with pytest.raises(MultiprocessModeUnavailable, match="a-file") as e:
        Telemetry(traces=False, multiproc_dir=taken / "sub")
    assert isinstance(e.value.__cause__, OSError) and e.value.__cause__.errno == errno.ENOTDIR
    with pytest.raises(OSError) as os_e:
        tars_telemetry.render_multiprocess_dir(tmp_path / "missing")
    assert os_e.value.errno == errno.ENOENT


def test_empty_multiprocess_env_is_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tars_telemetry.MULTIPROC_DIR_ENV, "")
    assert Telemetry(traces=False).multiproc_dir is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_child_without_a_file_of_its_own_warns(tmp_path: Path) -> None:
    d = tmp_path / "mp"
    tel = Telemetry(traces=False, multiproc_dir=d)
    c = tel.counter("c_fork_mp", "help")
    c.inc(2)
    # The directory is gone from under the parent: the child cannot start a file there.
    d.rename(tmp_path / "moved")
    d.write_text("not a directory")
    r, w = os.pipe()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        pid = os.fork()
        if pid == 0:  # the child
            try:
                c.inc(1)
                msgs = [str(x.message) for x in seen if x.category is RuntimeWarning]
                ok = len(msgs) == 1 and "multi-process" in msgs[0]
                os.write(w, b"ok" if ok else repr(msgs).encode()[:300])
            finally:
                os._exit(0)
    os.close(w)
    got = os.read(r, 300)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"ok", got
    assert not [x for x in seen if x.category is RuntimeWarning]
    c.inc(1)
    # The child went on counting into its parent's file: the total is still right.
    assert "c_fork_mp_total 4" in tars_telemetry.render_multiprocess_dir(tmp_path / "moved")


def test_stage_used_twice_and_ended_twice() -> None:
    tel = Telemetry(traces=False)
    q = tel.rag.query()
    with q:
        q.abandon("cancelled")
        q.abandon("again")
    with pytest.raises(RuntimeError), q:
        pass
    text, _ = tel.render()
    assert b'tars_rag_queries_total{status="error"} 1' in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_child_starts_from_zero_and_parent_keeps_counting() -> None:
    tel = Telemetry(traces=False)
    c = tel.counter("c_fork", "help")
    c.inc(5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            c.inc(1)
            body, _ = tel.render()
            os.write(w, b"ok" if b"c_fork_total 1" in body else body[:200])
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 300)
    os.waitpid(pid, 0)
    assert got == b"ok", got
    c.inc(1)
    assert b"c_fork_total 6" in tel.render()[0]


def test_label_children_are_made_once_and_bad_labels_still_raise() -> None:
    tel = Telemetry(traces=False)
    c = tel.counter("cached_children", "Children.", ["a", "b"])
    first = c.labels("x", "y")
    assert c.labels("x", "y") is first, "a repeated labels() call returns the same child"
    first.inc()
    assert c.labels(a="x", b="y").get() == 1.0
    with pytest.raises(TypeError):
        c.labels("x", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.labels(["unhashable"], "y")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        c.labels("x")
    h = tel.histogram("cached_children_seconds", "Children.", ["a"], buckets=[1.0])
    assert h.labels("x") is h.labels("x")
    g = tel.gauge("cached_children_now", "Children.", ["a"])
    assert g.labels("x") is g.labels("x")


def test_directory_other_users_can_write_is_refused_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shared /tmp-like directory: anyone could place files the workers read.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(MultiprocessModeUnavailable, match="can be written by other users") as e:
        Telemetry(traces=False, multiproc_dir=shared)
    assert tars_telemetry.MULTIPROC_ALLOW_SHARED_ENV in str(e.value)
    assert list(shared.iterdir()) == [], "nothing written"
    monkeypatch.setenv(tars_telemetry.MULTIPROC_ALLOW_SHARED_ENV, "1")
    assert Telemetry(traces=False, multiproc_dir=shared).multiproc_dir == str(shared)
    # A directory the first worker creates is this user's only, its files too.
    monkeypatch.delenv(tars_telemetry.MULTIPROC_ALLOW_SHARED_ENV)
    own = tmp_path / "own" / "svc"
    Telemetry(traces=False, multiproc_dir=own)
    assert own.stat().st_mode & 0o7777 == 0o700
    assert {f.stat().st_mode & 0o7777 for f in own.iterdir()} == {0o600}
