"""Third-party runtimes imported the way hydranet promises to run: without network use.

OpenVINO (its converter) and NNCF send usage telemetry by default; hydranet turns that off in
its own process unless the user opted in (:func:`no_telemetry`). Every hydranet import of
``openvino`` goes through :func:`import_openvino`, since importing it already sends an event.
"""

from __future__ import annotations

from typing import Any


def no_telemetry() -> None:
    """Keep OpenVINO's converter and NNCF from sending usage telemetry from this process.

    Both send it unless the user opted out with OpenVINO's ``opt_in_out --opt_out``, from a
    forked process; on a machine without a network that process was seen blocked in a DNS
    lookup that SIGTERM cannot interrupt, holding the whole program at exit (a test run: over
    15 minutes). hydranet uses no network at run time, so here only a user's explicit opt-in
    counts as consent: the tools ask ``OptInChecker.check`` whenever they (re)initialise their
    shared ``Telemetry`` instance, and an instance made before this call is corrected too.
    """
    try:
        from openvino_telemetry import Telemetry
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return
    try:
        if not getattr(OptInChecker.check, "hydranet_explicit_only", False):
            original = OptInChecker.check

            def check(self, enable_opt_in_dialog=False, disable_in_ci=False):  # noqa: ANN001
                # No dialog ever, and no consent from a missing consent file.
                result = original(self, False, disable_in_ci)
                return result if result == ConsentCheckResult.ACCEPTED else ConsentCheckResult.DECLINED

            check.hydranet_explicit_only = True  # type: ignore[attr-defined]
            OptInChecker.check = check
        instance = getattr(Telemetry, "_SingletonMetaClass__single_instance", None)
        if instance is not None:
            instance.consent = OptInChecker().check(False, True) == ConsentCheckResult.ACCEPTED
    except Exception:  # noqa: BLE001 - another telemetry version: nothing to switch off here
        pass


def import_openvino() -> Any:
    """The ``openvino`` module, imported with :func:`no_telemetry` first (its import sends an event)."""
    no_telemetry()
    import openvino

    return openvino
