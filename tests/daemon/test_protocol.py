"""The wire protocol against a real ftd: round trip, events with sequence numbers, malformed
frames that must never bring ftd down, and CURVE-only TCP access."""

from __future__ import annotations

import json
import time

import pytest
import zmq
from ftlab.daemon import client
from ftlab.daemon import protocol as P


def test_session_round_trip_and_rejections():
    session = P.Session(b"k" * 32)
    frames = session.request(P.JOBS, {"all": True}, "abc")
    message = session.unpack(frames)
    assert (message.type, message.id, message.body) == (P.JOBS, "abc", {"all": True})
    reply = session.unpack(session.reply("abc", {"x": 1}))
    assert reply.header["re"] == "abc" and reply.header["ok"] and reply.body == {"x": 1}
    topic, event = session.unpack_event(session.event("job.3", P.EV_JOB, 7, {"id": 3}))
    assert topic == "job.3" and event.seq == 7

    tampered = list(frames)
    tampered[3] = b'{"all": false}'
    with pytest.raises(P.ProtocolError) as err:
        session.unpack(tampered)
    assert err.value.code == "signature"
    with pytest.raises(P.ProtocolError) as err:
        session.unpack([b"FTLAB/0", *frames[1:]])
    assert err.value.code == "version"
    with pytest.raises(P.ProtocolError) as err:
        P.Session(b"other").unpack(frames)
    assert err.value.code == "signature"
    with pytest.raises(P.ProtocolError) as err:
        session.unpack(frames[:2])
    assert err.value.code == "frames"
    big = session.request(P.PING, {"pad": "x" * (P.MAX_MESSAGE_BYTES + 1)})
    with pytest.raises(P.ProtocolError) as err:
        session.unpack(big)
    assert err.value.code == "oversize"


def _raw_exchange(sock: zmq.Socket, frames: list[bytes], timeout_ms: int = 2000):
    sock.send_multipart(frames)
    if sock.poll(timeout_ms):
        return sock.recv_multipart()
    return None


def test_round_trip_events_and_malformed_frames(start_ftd):
    daemon = start_ftd()
    with daemon.client() as ftd:
        hello = ftd.hello()
        assert hello["protocol"] == P.VERSION.decode() and hello["user"] == "root" and hello["admin"]
        assert ftd.request(P.PING)["pid"] == daemon.process.pid

        # events: heartbeats and telemetry arrive with consecutive sequence numbers, newer than the snapshot
        sub = ftd.subscribe()
        snapshot = ftd.request(P.SNAPSHOT)
        seqs = []
        deadline = time.monotonic() + 5
        while len(seqs) < 4 and time.monotonic() < deadline:
            message, lost = sub.recv(timeout=1.5)
            if message is not None:
                assert message.seq > snapshot["seq"] and not lost
                seqs.append(message.seq)
        sub.close()
        assert len(seqs) == 4 and seqs == list(range(seqs[0], seqs[0] + 4))

        session = ftd.session
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(daemon.endpoint)
        cases = {
            "garbage": [b"\x00\xffnot a message"],
            "wrong version": [b"FTLAB/0", *session.request(P.PING)[1:]],
            "bad signature": [*session.request(P.PING)[:1], b"0" * 64, *session.request(P.PING)[2:]],
            "unknown type": session.request("format_disk"),
            "not json": [P.VERSION, session.sign(b"{", b"}"), b"{", b"}"],
            "header not an object": [P.VERSION, session.sign(b"[]", b"{}"), b"[]", b"{}"],
            "bad body types": session.request(P.SHOW, {"id": {"nested": True}}),
        }
        for name, frames in cases.items():
            answer = _raw_exchange(raw, frames)
            if answer is not None:
                reply = session.unpack(answer)
                assert not reply.header["ok"], name
            assert ftd.request(P.PING, timeout=3)["pid"] == daemon.process.pid, f"ftd died after {name}"
        raw.close()

        # oversize: libzmq drops the connection (ZMQ_MAXMSGSIZE); ftd keeps serving others
        big = zmq.Context.instance().socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(daemon.endpoint)
        big.send_multipart(session.request(P.PING, {"pad": "x" * (P.MAX_MESSAGE_BYTES + 1024)}))
        assert big.poll(1000) == 0
        big.close()
        assert ftd.request(P.PING, timeout=3)["pid"] == daemon.process.pid
        with pytest.raises(client.RequestFailed, match="unknown request type"):
            ftd.request("format_disk")
    assert daemon.process.poll() is None


def test_tcp_needs_a_registered_curve_key(start_ftd, short_dir, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(short_dir / "config"))
    import socket

    with socket.socket() as probe:  # a free port (ftd also uses port+1 for its TCP event stream)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = start_ftd(None, "--endpoint", f"tcp://127.0.0.1:{port}")
    with daemon.client() as local:
        tcp = f"tcp://127.0.0.1:{port}"

        # an unknown key gets nothing (the CURVE handshake is refused by the ZAP handler)
        server_public = local.request(P.REGISTER_KEY, {"public_key": zmq.curve_keypair()[0].decode()})["server_public"]
        stranger_public, stranger_secret = zmq.curve_keypair()
        stranger = zmq.Context.instance().socket(zmq.DEALER)
        stranger.setsockopt(zmq.LINGER, 0)
        stranger.curve_serverkey = server_public.encode()
        stranger.curve_publickey, stranger.curve_secretkey = stranger_public, stranger_secret
        stranger.connect(tcp)
        stranger.send_multipart(local.session.request(P.PING))
        assert stranger.poll(1500) == 0
        stranger.close()

        from ftlab.cli.main import main

        monkeypatch.setenv("FTLAB_ENDPOINT", daemon.endpoint)
        assert main(["ping", "--register-key", tcp]) == 0
        creds = json.loads(client.curve_file(tcp).read_text())
        assert creds["server_public"] == server_public
    with client.Client(tcp, timeout=5) as remote:
        hello = remote.hello()
        assert hello["transport"] == "tcp" and hello["uid"] == 0 and not hello["job_events"]
        assert remote.request(P.JOBS)["jobs"] == []


def test_client_backs_off_and_says_so_when_ftd_is_gone(start_ftd):
    daemon = start_ftd()
    said = []
    with client.Client(daemon.endpoint, timeout=0.3, retries=3, say=said.append) as ftd:
        assert ftd.request(P.PING)["pid"] == daemon.process.pid
        daemon.stop()
        with pytest.raises(client.DaemonUnavailable, match="did not answer"):
            ftd.request(P.PING)
    assert [s.split("reconnecting in ")[1] for s in said] == ["0.1s", "0.2s"]
    restarted = start_ftd()
    with client.Client(daemon.endpoint, timeout=2) as ftd:  # the same endpoint and key after a restart
        assert ftd.request(P.PING)["pid"] == restarted.process.pid
