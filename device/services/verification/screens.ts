// What the verification device shows to polling staff and voters: message keys with parameters
// (counts, attempt numbers; never a voter id), rendered by the target in the operator's language
// (simulator/ui/screens.ts for the simulator). Engine subset.

import type { Screen } from "../../platform/platform.ts";
import { RejectReason } from "../../../protocol/generated/device_codec.ts";

/** No register loaded: technician must load the signed station data. */
export const K_NOT_LOADED = "polls.not_loaded";
/** Register loaded, polls not open. {voters} */
export const K_READY = "polls.ready";
/** Polls open, waiting for a voter card. {verified, exempted} */
export const K_PRESENT_CARD = "verify.present_card";
/** A card was presented while polls are not open. */
export const K_NOT_OPEN = "polls.not_open";
/** Polls closed: the turnout report is signed. {verified, exempted, rejected} */
export const K_CLOSED = "polls.closed";
/** Closing: the turnout report is being signed. */
export const K_CLOSING = "polls.closing";
export const K_READING = "verify.reading_card";
/** A supervisor card in the voter slot without the supervisor button. */
export const K_SUPERVISOR_CARD = "verify.supervisor_card";
/** {attempt, max} */
export const K_PRESENT_FINGER = "verify.present_finger";
/** An attempt failed; {attempt, max}. One key per reason. */
export const K_FAIL_NO_FINGER = "verify.fail.no_finger";
export const K_FAIL_POOR_IMAGE = "verify.fail.poor_image";
export const K_FAIL_TIMEOUT = "verify.fail.timeout";
export const K_FAIL_NO_MATCH = "verify.fail.no_match";
export const K_FAIL_SENSOR = "verify.fail.sensor";
/** Verdicts. {verified} / {exempted, cap} */
export const K_VERIFIED = "verify.verified";
export const K_EXEMPTED = "verify.exempted";
/** Rejection: "verify.rejected." + reason name (see REJECT_KEYS). */
export const K_REJECTED = "verify.rejected.";
/** The record could not be made (journal or station log full, signing failed): the voter is NOT marked. */
export const K_NOT_RECORDED = "verify.error.not_recorded";
/** Recording is in progress (signing): keep the card on the reader. */
export const K_RECORDING = "verify.recording";
/** Exemption: the supervisor's card is wanted. {exempted, cap} */
export const K_EXEMPT_CARD = "exempt.present_supervisor_card";
/** Polls control: the supervisor's card is wanted. */
export const K_SUP_CARD = "supervisor.present_card";
export const K_SUP_DENIED = "supervisor.denied";
/** {voters} */
export const K_CONFIRM_OPEN = "supervisor.confirm_open";
/** {verified, exempted} */
export const K_CONFIRM_CLOSE = "supervisor.confirm_close";
export const K_DEVICE_ERROR = "device.error";

/** Rejection reason names by RejectReason value (the key suffix). */
export const REJECT_KEYS = [
  "unspecified",
  "not_in_register",
  "already_voted",
  "finger_mismatch",
  "card_mismatch",
  "card_unreadable",
  "capture_failed",
  "exemption_cap",
  "exemption_denied",
  "cancelled",
];

export function screen(key: string, params: { [name: string]: string | number } | null): Screen {
  return { key: key, params: params ?? {} };
}

export function rejectedScreen(reason: number): Screen {
  const name = reason >= 0 && reason < REJECT_KEYS.length ? REJECT_KEYS[reason] : REJECT_KEYS[RejectReason.UNSPECIFIED];
  return screen(K_REJECTED + name, null);
}

/** Device-fault screens carry a short code (a part name), never data. */
export function errorScreen(part: string): Screen {
  return screen(K_DEVICE_ERROR, { part: part });
}
