"""recipes.common.tfds_access: the fast "can TFDS load this?" check, offline."""

import socket
import threading

import pytest
import tensorflow_datasets as tfds

from recipes.common import tfds_access


def _no_lookup(*args, **kwargs):
    raise AssertionError(f"unexpected DNS lookup: {args}")


def _offline(*args, **kwargs):
    raise socket.gaierror(-3, "Temporary failure in name resolution")


def test_resolving_host_means_loadable(monkeypatch, tmp_path):
    looked_up = []

    def resolves(host, port, *args, **kwargs):
        looked_up.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolves)
    assert tfds_access.host_resolves("data.example", timeout=5.0)
    # Not prepared in an empty data_dir, so the host decides.
    assert tfds_access.can_load("imdb_reviews", str(tmp_path))
    assert looked_up == [("data.example", 443), (tfds_access.DATA_HOST, 443)]


@pytest.mark.parametrize("error", [socket.gaierror(-2, "Name or service not known"),
                                   UnicodeError("label too long")])
def test_failed_lookup_means_not_loadable(monkeypatch, tmp_path, error):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(socket, "getaddrinfo", fails)
    assert not tfds_access.host_resolves()
    assert not tfds_access.can_load("imdb_reviews", str(tmp_path))


def test_lookup_that_hangs_answers_false_after_the_timeout(monkeypatch):
    release = threading.Event()

    def hangs(*args, **kwargs):
        release.wait(30)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hangs)
    try:
        assert not tfds_access.host_resolves(timeout=0.05)
    finally:
        release.set()


def test_prepared_dataset_needs_no_network(monkeypatch, tmp_path):
    tfds.testing.DummyDataset(data_dir=str(tmp_path)).download_and_prepare()
    monkeypatch.setattr(socket, "getaddrinfo", _no_lookup)
    assert tfds_access.is_prepared("dummy_dataset", str(tmp_path))
    assert tfds_access.can_load("dummy_dataset", str(tmp_path))
    # A known dataset that is not prepared there needs the network.
    assert not tfds_access.is_prepared("imdb_reviews", str(tmp_path))
    monkeypatch.setattr(socket, "getaddrinfo", _offline)
    assert not tfds_access.can_load("imdb_reviews", str(tmp_path))


def test_unknown_name_is_left_to_tfds_load(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _no_lookup)
    assert tfds_access.is_prepared("no_such_dataset_xyz")
    assert tfds_access.can_load("no_such_dataset_xyz")
