"""Two real Unix users against one ftd run as root: each sees and controls only their own jobs;
identity comes from the kernel (SO_PEERCRED), not from anything the client sends."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest
from ftlab.daemon import client
from ftlab.daemon import protocol as P

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a second Unix user (useradd)")

USERS = ("ftlabtesta", "ftlabtestb")


@pytest.fixture(scope="module")
def two_users():
    created = []
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
            created.append(name)
    yield [pwd.getpwnam(name) for name in USERS]
    for name in created:
        subprocess.run(["userdel", name], check=False)


def as_user(entry, fn):
    """Run fn() in a forked child with the user's uid/gid; returns its JSON-able result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            result = {"ok": fn()}
        except BaseException as err:  # noqa: BLE001 — reported to the parent
            result = {"error": f"{type(err).__name__}: {err}", "code": getattr(err, "code", None)}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_users_see_and_control_only_their_jobs(start_ftd, short_dir, two_users, helpers):
    ann, bob = two_users
    daemon = start_ftd(None, "--admin-group", "ftlab-test-admins-none")
    profile = helpers.write_profile(short_dir, short_dir / "no-model", max_steps=2)
    os.chmod(profile, 0o644)
    endpoint = daemon.endpoint
    client.profile_payload(profile)  # import the loader now: after setuid the venv under /root may be unreadable

    def submit():
        with client.Client(endpoint, timeout=5) as ftd:
            hello = ftd.hello()
            job_id = client.submit_file(ftd, profile, gpus=0, name="ann-job")
            return {"hello": hello, "id": job_id, "mine": [j["id"] for j in ftd.request(P.JOBS)["jobs"]]}

    result = as_user(ann, submit)
    assert "ok" in result, result
    job_id = result["ok"]["id"]
    hello = result["ok"]["hello"]
    assert (hello["uid"], hello["user"], hello["admin"]) == (ann.pw_uid, "ftlabtesta", False)
    assert result["ok"]["mine"] == [job_id]
    events = hello["events"][len("ipc://"):]
    assert os.stat(events).st_uid == ann.pw_uid and os.stat(events).st_mode & 0o777 == 0o600

    job_dir = short_dir / "state" / "jobs" / str(job_id)
    assert os.stat(job_dir).st_uid == ann.pw_uid  # the job runs as, and writes as, its submitter

    def snoop():
        found = {}
        with client.Client(endpoint, timeout=5) as ftd:
            found["whoami"] = ftd.hello()["user"]
            found["all"] = [j["id"] for j in ftd.request(P.JOBS, {"all": True})["jobs"]]
            for verb in (P.SHOW, P.LOGS, P.CANCEL, P.RESUME, P.METRICS):
                try:
                    ftd.request(verb, {"id": job_id})
                    found[verb] = "allowed"
                except client.RequestFailed as err:
                    found[verb] = err.code
        with socket.socket(socket.AF_UNIX) as sub:  # ann's event stream
            try:
                sub.connect(events)
                found["events"] = "connected"
            except PermissionError:
                found["events"] = "denied"
        for path in (job_dir, job_dir.parent):
            try:
                os.listdir(path)
                found[str(path)] = "listed"
            except PermissionError:
                found[str(path)] = "denied"
        return found

    result = as_user(bob, snoop)
    assert "ok" in result, result
    found = result["ok"]
    assert found["whoami"] == "ftlabtestb" and found["all"] == []
    assert {found[v] for v in (P.SHOW, P.LOGS, P.CANCEL, P.RESUME, P.METRICS)} == {"not_found"}
    assert found["events"] == "denied"
    assert found[str(job_dir)] == "denied" and found[str(job_dir.parent)] == "denied"

    with daemon.client() as root:  # root is an admin: sees every user's job
        jobs = root.request(P.JOBS, {"all": True})
        assert jobs["scope"] == "all" and [j["owner"] for j in jobs["jobs"]] == ["ftlabtesta"]
        assert root.request(P.SHOW, {"id": job_id})["owner_uid"] == ann.pw_uid
        helpers.wait_for(lambda: root.request(P.SHOW, {"id": job_id})["state"] in client.TERMINAL_STATES, 60,
                         what="ann's job to end")

    # ann owns her job folder: she swaps log.txt for a link to a root-only file, then asks ftd (root)
    # to read it and to resume the job (which opens and hands over log.txt). Neither may follow it.
    secret = short_dir / "root-only"
    secret.write_text("root's secret\n")
    os.chmod(secret, 0o600)
    log = job_dir / "log.txt"
    log.unlink(missing_ok=True)
    log.symlink_to(secret)
    os.lchown(log, ann.pw_uid, ann.pw_gid)

    def exploit():
        found = {}
        with client.Client(endpoint, timeout=5) as ftd:
            try:
                found["logs"] = ftd.request(P.LOGS, {"id": job_id})["data"]
            except client.RequestFailed as err:
                found["logs"] = err.code
            found["resume"] = ftd.request(P.RESUME, {"id": job_id})["job"]["state"]
        return found

    result = as_user(ann, exploit)
    assert result.get("ok", {}).get("logs") == "unsafe_file", result
    with daemon.client() as root:
        helpers.wait_for(lambda: root.request(P.SHOW, {"id": job_id})["state"] in client.TERMINAL_STATES, 30,
                         what="the resumed job to end")
        assert "could not start" in root.request(P.SHOW, {"id": job_id})["error"]
    assert secret.read_text() == "root's secret\n" and os.stat(secret).st_uid == 0


def test_jobs_run_as_their_submitter(two_users, short_dir):
    """The runner drops to the submitter's uid, gid and groups before exec (ftd runs as root)."""
    import psutil
    from ftlab.daemon.runner import Runner
    from ftlab.daemon.store import Job, JobState

    ann = two_users[0]
    (short_dir / "jobs").mkdir()
    job = Job(id=1, name="t", owner_uid=ann.pw_uid, owner=ann.pw_name, state=JobState.STARTING,
              profile={"stage": "sft"}, job_dir=str(short_dir / "jobs" / "1"))
    # an interpreter the test user may execute (the venv's may live under an unreadable /root); it
    # cannot import ftlab and exits at once, but as a zombie it still shows whose process it was
    system_python = Path("/usr/bin/python3")
    if not system_python.exists():
        pytest.skip("needs /usr/bin/python3 (an interpreter every user may run)")
    runner = Runner(python=str(system_python))
    runner.prepare(job)
    pid, _ = runner.launch(job, [])
    try:
        proc = psutil.Process(pid)
        assert proc.uids().real == ann.pw_uid and proc.uids().effective == ann.pw_uid
        assert proc.gids().real == ann.pw_gid
        assert os.getpgid(pid) == pid  # its own process group: cancel signals the whole group
        assert os.stat(short_dir / "jobs" / "1" / "log.txt").st_uid == ann.pw_uid
    finally:
        runner.children[1].wait(10)
    env = runner.environment(job, [])
    assert env["USER"] == ann.pw_name and env["HOME"] == ann.pw_dir and env["CUDA_VISIBLE_DEVICES"] == ""
