"""A private PostgreSQL cluster: `.pgdata/` for `make run`, a temporary one for tests.

The cluster listens on a Unix socket only. Its directory lives under /tmp because socket
paths are limited to ~107 bytes. PostgreSQL refuses to run as root, so as root every
server command runs as the `postgres` user, which then owns the data and socket folders.
"""

import contextlib
import glob
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import psycopg

from api.cli import PROJECT_ROOT

DATABASE_NAME = "incidents"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found via PG_BINDIR, "
    "`pg_config --bindir`, PATH or /usr/lib/postgresql/*/bin.\n"
    "Install them, e.g. on Debian/Ubuntu: sudo apt-get install postgresql\n"
    "or point DATABASE_URL at a running PostgreSQL >= 14."
)


class ClusterError(RuntimeError):
    pass


def find_bindir(tools=("initdb", "pg_ctl"), hint=INSTALL_HINT):
    """The first folder of PostgreSQL binaries that has all of `tools`."""
    candidates = [os.environ.get("PG_BINDIR")]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        candidates.append(
            subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    on_path = shutil.which(tools[0])
    candidates.append(on_path and os.path.dirname(on_path))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for bindir in filter(None, candidates):
        if all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in tools):
            return bindir
    raise ClusterError(hint)


def _version_key(path):
    version = pathlib.Path(path).parent.name
    return int(version) if version.isdigit() else 0


class Cluster:
    def __init__(self, datadir, sockdir, port=5432):
        self.datadir = pathlib.Path(datadir)
        self.sockdir = pathlib.Path(sockdir)
        self.port = port  # also names the socket: several clusters may share a folder

    def url(self, dbname=DATABASE_NAME):
        return f"postgresql://postgres@/{dbname}?host={self.sockdir}&port={self.port}"

    def start(self, *settings):
        """Initialise the cluster if needed, start it if stopped, create the app database."""
        own_folder(self.sockdir)
        if not (self.datadir / "PG_VERSION").exists():
            own_folder(self.datadir)
            self.run(
                "initdb",
                "-D",
                self.datadir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        if not self.running():
            options = " ".join(["-c listen_addresses=''", f"-k {self.sockdir}", f"-p {self.port}", *settings])
            self.run(
                "pg_ctl", "-D", self.datadir, "-l", self.datadir / "server.log", "-o", options, "-w", "start"
            )
        self._create_database()

    def stop(self, mode="fast"):
        if self.running():
            self.run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")

    def base_backup(self, source, *options):
        """Makes this cluster, not created yet, a streaming replica of the running one at the
        libpq conninfo `source`: pg_basebackup copies its data, and -R makes this a standby that
        follows it (standby.signal, primary_conninfo)."""
        own_folder(self.datadir)
        self.run(
            "pg_basebackup", "-D", self.datadir, "-d", source, "-R", "-X", "stream", "-c", "fast", *options
        )

    def running(self):
        if not (self.datadir / "PG_VERSION").exists():
            return False
        status = subprocess.run(self._command("pg_ctl", "-D", self.datadir, "status"), capture_output=True)
        return status.returncode == 0

    def _create_database(self):
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE_NAME}")  # a constant, not input

    def _command(self, tool, *args):
        return as_postgres([os.path.join(find_bindir(), tool), *map(str, args)])

    def run(self, tool, *args):
        """Runs one of PostgreSQL's tools (as the `postgres` user when root); raises on failure."""
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"{tool} failed:\n{result.stdout}{result.stderr}")


def as_postgres(command):
    """`command`, run as the `postgres` user when root (PostgreSQL and PgBouncer refuse root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def own_folder(path):
    """Makes `path` a folder only its owner enters: `postgres` when root."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def database_url(env=os.environ):
    """DATABASE_URL, or else the private cluster's: what the command line works on."""
    return env.get("DATABASE_URL") or private_cluster().url()


def private_cluster():
    """The cluster of `make run`: data in .pgdata/, socket in a short per-project /tmp folder."""
    tag = hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()[:10]
    return Cluster(PROJECT_ROOT / ".pgdata", f"/tmp/incidents-pg-{tag}")


def sized_to_machine():
    """Settings for the private cluster: shared_buffers a quarter of this machine's memory, from
    PostgreSQL's default of 128 MB up to 2 GB. PERF: 128 MB held a tenth of the bench's
    incidents table with its indexes; each phrase search then copied ~29,000 pages in from the
    OS cache (131-140 ms; 61-63 ms with 2 GB, in alternating runs)."""
    quarter_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4 // 2**20
    return (f"-c shared_buffers={max(128, min(2048, quarter_mb))}MB",)


FAST = ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")


@contextlib.contextmanager
def throwaway_cluster(settings=FAST):
    """A disposable cluster for tests, by default fast (no fsync); removed on exit."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="incidents-test-"))
    own_folder(base)
    cluster = Cluster(base / "data", base / "sock")
    try:
        cluster.start(*settings)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
