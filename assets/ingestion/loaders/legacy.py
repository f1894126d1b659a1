"""Legacy binary Office files (.doc, .xls, .ppt), converted to DOCX, XLSX and PPTX by
LibreOffice headless and read by those formats' loaders.

LibreOffice runs with a private profile in a temporary folder that is removed afterwards,
so conversions never share or leave state, and in its own process group, so a timeout
stops the whole of it (``soffice`` starts ``soffice.bin`` as a child).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from assets.ingestion.detection import DOC, PPT, XLS, detect_content_type
from assets.ingestion.loaders import LOADERS, ParseRequest, loader
from core.types import ParsedDocument, quarantine

# Per legacy type: its extension, the OOXML extension it is converted to, the Debian package.
_LEGACY = {
    DOC: (".doc", "docx", "libreoffice-writer-nogui"),
    XLS: (".xls", "xlsx", "libreoffice-calc-nogui"),
    PPT: (".ppt", "pptx", "libreoffice-impress-nogui"),
}
# LibreOffice fetches a document's linked pictures while converting it (seen with strace: a
# .doc linking http://192.0.2.1/pic.png connects there), which would break the air gap and
# let a document make the host request any URL. Every proxy is set to a closed loopback port
# (9, discard) with no exceptions, and the curl LibreOffice uses then makes no connection.
_NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy",
                                                        "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY")}
_NO_NETWORK.update(no_proxy="", NO_PROXY="")
# Of the parse deadline, the share conversion may take: the rest is for reading the result,
# and LibreOffice is stopped by its own timeout before the parse worker is.
CONVERSION_SHARE_OF_TIMEOUT = 0.5


@loader(*_LEGACY)
def load_legacy_office(request: ParseRequest) -> ParsedDocument:
    """The converted document as its OOXML loader reads it, under the legacy content type."""
    suffix, target, package = _LEGACY[request.content_type]
    if soffice_path() is None:
        raise quarantine(
            f"legacy Office file ({suffix}) needs LibreOffice to be read: install LibreOffice (Debian {package}) "
            f"or save it as .{target}"
        )
    converted = convert_with_libreoffice(request.data, suffix, target,
                                         request.limits.timeout_s * CONVERSION_SHARE_OF_TIMEOUT)
    name = request.name.with_suffix(f".{target}")
    content_type = detect_content_type(name, converted, request.limits)  # the archive limits apply to it too
    document = LOADERS[content_type](replace(request, data=converted, content_type=content_type, name=name))
    return replace(document, content_type=request.content_type)


def soffice_path() -> str | None:
    """The LibreOffice binary on ``PATH``, if any."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_with_libreoffice(data: bytes, suffix: str, target: str, timeout_s: float) -> bytes:
    """``data`` (a file of type ``suffix``) converted by ``soffice --convert-to target`` (an
    extension, or ``extension:filter name``), or ``DocumentRejected`` saying why LibreOffice could not."""
    soffice = soffice_path()
    if soffice is None:
        raise quarantine(f"cannot convert {suffix} to .{target}: LibreOffice (soffice) is not installed")
    with tempfile.TemporaryDirectory(prefix="ragpipe-soffice-") as folder:
        work = Path(folder)
        source = work / f"document{suffix}"
        source.write_bytes(data)
        command = [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
                   "--nolockcheck", "--nodefault", "--convert-to", target, "--outdir", str(work / "out"), str(source)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "HOME": folder, **_NO_NETWORK})
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise quarantine(f"LibreOffice did not convert the {suffix} file within {timeout_s:g} s") from None
        result = work / "out" / f"document.{target.partition(':')[0]}"
        if not result.is_file():
            said = " ".join(output.decode(errors="replace").split())[-300:]
            raise quarantine(f"LibreOffice could not convert the {suffix} file (corrupt or unsupported?): "
                             f"{said or f'exit code {process.returncode}'}")
        return result.read_bytes()
