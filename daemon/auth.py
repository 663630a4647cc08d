"""Who is asking, and what may they do: Unix identity for every ftd request, never self-declared.

Over the Unix socket (ipc://) the identity is kernel-proven. When a client connects, libzmq reads
the peer's credentials with `getsockopt(SO_PEERCRED)` and attaches them to every message of that
connection as the "Peer-Address" property (`<addr>:<uid>:<gid>:<pid>`); ftd reads that property
from the received frame. A process cannot forge it: it is filled in on ftd's side of the socket
from what the kernel recorded at connect(). We chose this over per-user key files because it
needs no setup, no secret on disk and survives a user's home being unreadable to the daemon.

Over TCP there is no kernel to ask, so TCP endpoints are CURVE-encrypted and only *authorised*
public keys get in: a user registers their public key once over the Unix socket (where ftd knows
their uid for certain) with `ftctl ping --register-key`; ftd stores it as
`<state>/curve/authorized/<uid>.key` and its ZAP handler maps that key back to the uid
(ZMQ "User-Id" property) on every TCP connection. Unknown keys are refused in the handshake.

The event streams are split by who may read them: in multi-user (root) mode every user gets
their own PUB socket file `events-<uid>.sock` owned by them with mode 0600, admins share
`events-admin.sock` (group = admin group, 0660), so the kernel's file permissions decide who
can subscribe; a PUB socket cannot filter by subscriber itself. In user mode the whole runtime
folder is 0700 and only its owner gets in.

Authorisation: a user sees and controls their own jobs; members of the admin group (default
`ftlab-admin`, configurable with `ftd --admin-group`) and root see and control all.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

DEFAULT_ADMIN_GROUP = "ftlab-admin"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    user: str
    admin: bool
    transport: str  # "ipc" or "tcp"


class AuthError(Exception):
    """The request's sender could not be identified (it is dropped with a reason)."""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def is_admin(uid: int, admin_group: str | None, daemon_uid: int) -> bool:
    if uid == 0:
        return True
    if daemon_uid != 0 and uid == daemon_uid:  # user mode: the daemon's owner
        return True
    if not admin_group:
        return False
    try:
        group = grp.getgrnam(admin_group)
        entry = pwd.getpwuid(uid)
    except KeyError:
        return False
    return group.gr_gid == entry.pw_gid or entry.pw_name in group.gr_mem


class Authority:
    """Turns a received frame into an `Identity` and answers "may this identity touch that job"."""

    def __init__(self, admin_group: str | None = DEFAULT_ADMIN_GROUP):
        self.admin_group = admin_group
        self.daemon_uid = os.geteuid()
        self._cache: dict[tuple[int, str], Identity] = {}

    def identify(self, frame: zmq.Frame, transport: str) -> Identity:
        if transport == "ipc":
            try:
                peer = frame.get("Peer-Address")
                _, uid_s, gid_s, _pid = peer.rsplit(":", 3)
                uid, gid = int(uid_s), int(gid_s)
            except (zmq.ZMQError, ValueError, AttributeError):
                raise AuthError("no kernel peer credentials on this connection") from None
        else:
            try:
                uid = int(frame.get("User-Id"))
            except (zmq.ZMQError, ValueError, TypeError):
                raise AuthError("TCP request without an authorised CURVE key") from None
            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = -1
        key = (uid, transport)
        if key not in self._cache:
            self._cache[key] = Identity(uid, gid, user_name(uid), is_admin(uid, self.admin_group, self.daemon_uid),
                                        transport)
        return self._cache[key]

    @staticmethod
    def may_access(identity: Identity, owner_uid: int) -> bool:
        return identity.admin or identity.uid == owner_uid


# ── CURVE keys for TCP ──────────────────────────────────────────────────────────────────────────


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a secret atomically, never readable by others even for an instant."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class CurveKeys:
    """The server keypair and the authorised client keys under `<state>/curve/`."""

    def __init__(self, state_dir: Path):
        self.root = state_dir / "curve"
        self.authorized = self.root / "authorized"
        self.authorized.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        secret_file = self.root / "server.key_secret"
        if not secret_file.exists():
            public, secret = zmq.curve_keypair()
            write_private(secret_file, public + b"\n" + secret + b"\n")
        public, secret = secret_file.read_bytes().split()
        self.public, self.secret = public, secret

    def authorize(self, uid: int, public_key: str) -> None:
        key = public_key.strip().encode()
        if len(key) != 40:
            raise ValueError("a CURVE public key is 40 Z85 characters")
        write_private(self.authorized / f"{uid}.key", key + b"\n")

    def uid_of(self, public_key: bytes) -> int | None:
        """The uid whose authorised key this is (raw 32-byte or Z85 40-character key)."""
        wanted = z85.encode(public_key) if len(public_key) == 32 else bytes(public_key)
        for path in self.authorized.glob("*.key"):
            if path.read_bytes().strip() == wanted:
                return int(path.stem)
        return None


def start_curve_authenticator(context, keys: CurveKeys):
    """A ZAP handler in ftd's event loop that admits only authorised keys and names their uid."""
    from zmq.auth.asyncio import AsyncioAuthenticator

    class KeyAuthenticator(AsyncioAuthenticator):
        def curve_user_id(self, client_public_key: bytes) -> str:  # documented override point
            return str(keys.uid_of(client_public_key))

    class Provider:
        def callback(self, domain: str, key: bytes) -> bool:
            return keys.uid_of(key) is not None

    auth = KeyAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=Provider())
    return auth
