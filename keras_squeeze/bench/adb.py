"""A small adb client: device discovery, push and shell, each with a timeout and clear errors.

Only the `adb` command-line tool is used (Android platform tools; Debian and
Ubuntu: `apt-get install adb`). Every call has a timeout, so a device that
stops answering raises DeviceError instead of hanging.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from keras_squeeze.errors import DeviceError

DEFAULT_TIMEOUT_S = 60.0
INSTALL_HINT = "the Android platform tools (Debian/Ubuntu: apt-get install adb)"
_PROPERTY = re.compile(r"^(usb|product|model|device|transport_id|features):")
# What adb prints when the device it talks to is gone (adb 1.0.41 wording).
_GONE = re.compile(
    r"device '[^']*' not found|no devices/emulators found|device offline|device unauthorized"
    r"|error: closed|protocol fault|device still authorizing|error: device not found",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class AndroidDevice:
    """One line of `adb devices -l`.

    Attributes:
        serial: the id to pass as `adb -s`.
        state: "device" (ready), "offline", "unauthorized", "no permissions ...", ...
        properties: the -l details: product, model, device, transport_id, usb.
    """

    serial: str
    state: str
    properties: dict = dataclasses.field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "device"

    def describe(self) -> str:
        model = self.properties.get("model")
        return f"{self.serial} ({self.state}{', ' + model if model else ''})"


def parse_devices(text: str) -> list[AndroidDevice]:
    """Devices from the output of `adb devices` or `adb devices -l`.

    Example:
        >>> parse_devices("List of devices attached\\nemulator-5554\\tdevice\\n")
        [AndroidDevice(serial='emulator-5554', state='device', properties={})]
    """
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*", "adb server", "daemon")):
            continue
        tokens = line.split()
        if len(tokens) < 2:
            continue
        serial, rest = tokens[0], tokens[1:]
        state_tokens = []
        properties = {}
        for tok in rest:
            if not properties and not _PROPERTY.match(tok):
                state_tokens.append(tok)
            elif ":" in tok:
                key, _, value = tok.partition(":")
                properties[key] = value
        devices.append(AndroidDevice(serial, " ".join(state_tokens), properties))
    return devices


def find_adb(adb: str | None = None) -> str:
    """The adb executable: `adb` if given (path or name), else the one on PATH.

    Raises:
        DeviceError: it cannot be found.
    """
    name = adb or "adb"
    found = shutil.which(name)
    if found is None:
        where = f"'{adb}'" if adb else f"no adb on PATH ({os.environ.get('PATH', '')})"
        raise DeviceError(
            f"adb was not found. Expected {INSTALL_HINT}, or adb= the path of an adb "
            f"executable. Received: {where}"
        )
    return found


def device_gone(text: str) -> bool:
    """Whether adb's output says the device is gone (disconnected, offline, unauthorized)."""
    return _GONE.search(text) is not None


class Adb:
    """Runs adb commands with timeouts; errors become DeviceError.

    Args:
        path: the adb executable (default: found on PATH).
        timeout: default seconds per command.
        server_port: the adb server port (adb -P); None uses adb's default
            (5037, or $ANDROID_ADB_SERVER_PORT).
    """

    def __init__(
        self,
        path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        server_port: int | None = None,
    ):
        self.path = find_adb(path)
        self.timeout = timeout
        self.server_port = server_port

    def command(self, args: Sequence[str], serial: str | None = None) -> list[str]:
        """The full argv of an adb call."""
        cmd = [self.path]
        if self.server_port is not None:
            cmd += ["-P", str(self.server_port)]
        if serial is not None:
            cmd += ["-s", serial]
        return cmd + list(args)

    def run(
        self,
        args: Sequence[str],
        serial: str | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Runs one adb command.

        Raises:
            DeviceError: it timed out, the device is gone, or (with check) it failed.
        """
        cmd = self.command(args, serial)
        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=limit,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            who = f"the device '{serial}'" if serial else "the adb server"
            raise DeviceError(
                f"adb did not answer in time: {who} may have been disconnected or is not "
                f"responding. Expected `adb {' '.join(args[:2])} ...` to finish within "
                f"{limit:g} s. Received: no answer (the command was stopped)"
            ) from e
        except OSError as e:
            raise DeviceError(
                f"adb could not be started. Expected {INSTALL_HINT}. Received: "
                f"'{self.path}' ({e.strerror})"
            ) from e
        if check and proc.returncode != 0:
            raise self.error(proc, args, serial)
        return proc

    def error(self, proc: subprocess.CompletedProcess, args, serial) -> DeviceError:
        """The DeviceError for a failed adb call (disconnection named as such)."""
        text = (proc.stderr or "") + (proc.stdout or "")
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
        if serial is not None and device_gone(text):
            return DeviceError(
                f"The Android device '{serial}' is not reachable: it was disconnected, went "
                "offline or is not authorized. Expected it listed as 'device' by `adb devices "
                f"-l` for the whole run. Received: {last or 'no output'}"
            )
        return DeviceError(
            f"adb failed. Expected `adb {' '.join(args[:2])} ...` to succeed. Received: exit "
            f"code {proc.returncode}: {last or 'no output'}"
        )

    def devices(self, timeout: float | None = None) -> list[AndroidDevice]:
        """`adb devices -l`, parsed (starts the adb server if needed)."""
        return parse_devices(self.run(["devices", "-l"], timeout=timeout).stdout)

    def push(self, serial: str, local: str, remote: str, timeout: float | None = None) -> None:
        self.run(["push", str(local), remote], serial=serial, timeout=timeout)

    def shell(
        self, serial: str, command: str, timeout: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """`adb -s serial shell <command>`; the device shell's exit code is returned."""
        return self.run(["shell", command], serial=serial, timeout=timeout, check=check)


def select_device(devices: Sequence[AndroidDevice], serial: str | None = None) -> AndroidDevice:
    """The device to use: `serial`, or the only ready one.

    Raises:
        DeviceError: no device, the serial is not attached, it is not ready,
            or several are ready and no serial was given.
    """
    listed = ", ".join(d.describe() for d in devices) or "none"
    if serial is not None:
        match = [d for d in devices if d.serial == serial]
        if not match:
            raise DeviceError(
                f"The Android device '{serial}' is not attached. Expected it in `adb devices "
                f"-l`. Received: {listed}"
            )
        device = match[0]
    else:
        ready = [d for d in devices if d.ready]
        if not devices:
            raise DeviceError(
                "No Android device is attached. Expected one device listed as 'device' by "
                "`adb devices -l` (USB debugging on, or `adb connect host:port`). Received: none"
            )
        if len(ready) > 1:
            raise DeviceError(
                "Several Android devices are attached. Expected serial= naming one. "
                f"Received: {listed}"
            )
        device = ready[0] if ready else devices[0]
    if not device.ready:
        raise DeviceError(
            f"The Android device '{device.serial}' is not ready. Expected state 'device' "
            "(accept the USB debugging prompt on the phone for 'unauthorized', reconnect for "
            f"'offline'). Received: state '{device.state}'"
        )
    return device


def list_devices(
    adb: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, server_port: int | None = None
) -> list[AndroidDevice]:
    """Android devices adb sees (`adb devices -l`), in every state.

    Example:
        >>> [d.serial for d in ks.bench.list_devices() if d.ready]
        ['R58M123ABC']
    """
    return Adb(adb, timeout, server_port).devices()
