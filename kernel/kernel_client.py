"""Small helpers around jupyter_client for the kernel scripts: start the course's Rust kernel,
run code cells with a timeout, collect outputs, and sample the kernel's memory (process tree RSS)."""

import os
import threading
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def tree_rss_bytes(pid):
    """Resident memory of a process and all its descendants, in bytes."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(_children(p))
    return total


class PeakMemory:
    """Samples the RSS of a process tree every 0.25 s in a thread; `.peak` is the maximum seen."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            time.sleep(0.25)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak


class Kernel:
    """A running Rust kernel with `run(code, timeout)` returning (ok, text, mimes)."""

    def __init__(self, cwd=NOTEBOOKS, env=None):
        self.km = KernelManager(kernel_name="rust")
        e = dict(os.environ)
        e.update(env or {})
        self.km.start_kernel(cwd=str(cwd), env=e)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    @property
    def pid(self):
        return self.km.provisioner.pid if self.km.provisioner else None

    def run(self, code, timeout):
        msg_id = self.kc.execute(code)
        texts, mimes, ok = [], set(), True
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"cell did not finish within {timeout} s: {code[:60]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 5))
            except Exception:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            t, c = msg["msg_type"], msg["content"]
            if t == "stream":
                texts.append(c["text"])
                if c["name"] == "stderr" and "panicked at" in c["text"]:
                    ok = False
            elif t in ("execute_result", "display_data"):
                mimes.update(c["data"].keys())
                texts.append(c["data"].get("text/plain", ""))
                texts.append(c["data"].get("text/html", ""))
            elif t == "error":
                ok = False
                texts.append("\n".join(c.get("traceback", [])) or c.get("evalue", ""))
            elif t == "status" and c["execution_state"] == "idle":
                break
        return ok, "".join(texts), mimes

    def shutdown(self):
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
