// The election definition of a result acceleration device: the contests and their options (lists
// and candidates) for one station, signed by the commission. The signature was checked before
// (device/services/authority.ts); this module decodes the body of the SignedArtifact, checks that
// it is sane and meant for this station, and turns it into the layout the tally counts against.
// Engine subset.
//
// BallotEffect.choices layout (what a journalled BALLOT record holds, per contest in definition
// order): a contest with max_marks 1 takes one entry: the marked option's index, CHOICE_BLANK (-1)
// or CHOICE_INVALID (-2). A contest with max_marks k > 1 takes k entries: the marked options'
// indices in ascending order, padded with CHOICE_BLANK; a blank contest is k x CHOICE_BLANK and an
// invalid one (over-vote) k x CHOICE_INVALID. The layout follows from the definition alone, so a
// reader holding the definition can split the list.

import { tryDecode } from "../../../protocol/codec_runtime.ts";
import {
  ArtifactKind,
  decodeElectionDefinition,
  type ElectionDefinition,
  type SignedArtifact,
} from "../../../protocol/generated/device_codec.ts";

/** Contests in one definition. */
export const MAX_CONTESTS = 16;
/** Options (lists, candidates) in one contest: the scanner's marks fit in 16 bytes. */
export const MAX_OPTIONS = 128;
/** Marks a contest may allow. */
export const MAX_MARKS = 16;
/** BallotEffect.choices entries of a whole ballot (see the layout above). */
export const MAX_CHOICE_SLOTS = 64;
/** Identifiers (election, station, contest): 1..64 of A-Z a-z 0-9 . _ - : / */
export const MAX_ID_CHARS = 64;
/** Display names (election, contest, option). */
export const MAX_NAME_CHARS = 128;
/** Largest definition body accepted. */
export const MAX_BODY_BYTES = 32768;

export const CHOICE_BLANK = -1;
export const CHOICE_INVALID = -2;

export interface ContestDef {
  id: string;
  name: string;
  options: string[];
  /** More marks than this make the contest invalid (1 when the definition leaves it 0). */
  maxMarks: number;
  /** Where this contest's entries start in BallotEffect.choices. */
  slot: number;
  /** How many entries it takes there (1, or maxMarks when above 1). */
  slots: number;
}

export interface Election {
  id: string;
  name: string;
  stationId: string;
  contests: ContestDef[];
  pollsOpenMs: number;
  pollsCloseMs: number;
  registerSize: number;
  /** The artifact's version (only grows per election and station). */
  version: number;
  /** The signed body, as received: its SHA-256 identifies the definition in the result. */
  body: Uint8Array;
  /** Total BallotEffect.choices entries of a ballot. */
  slots: number;
}

export interface ElectionParse {
  election: Election | null;
  /** Why the definition was refused (null when it was accepted). */
  error: string | null;
}

/** True for 1..MAX_ID_CHARS characters of A-Z a-z 0-9 . _ - : / */
export function isSaneId(s: unknown): boolean {
  if (typeof s !== "string" || s.length < 1 || s.length > MAX_ID_CHARS) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok =
      (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45 || c === 58 || c === 47;
    if (!ok) return false;
  }
  return true;
}

/** A display name: at most MAX_NAME_CHARS, no control characters. */
function isSaneName(s: unknown, allowEmpty: boolean): boolean {
  if (typeof s !== "string" || s.length > MAX_NAME_CHARS || (!allowEmpty && s.length === 0)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 127) return false;
  }
  return true;
}

function fail(error: string): ElectionParse {
  return { election: null, error: error };
}

function checkContests(d: ElectionDefinition): string | null {
  const list = d.contests ?? [];
  if (list.length === 0) return "no contests";
  if (list.length > MAX_CONTESTS) return "too many contests: " + list.length + " (at most " + MAX_CONTESTS + ")";
  let slots = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    const where = "contest " + (i + 1);
    if (!isSaneId(c.id)) return where + ": bad id";
    for (let j = 0; j < i; j++) if (list[j].id === c.id) return where + ": id " + c.id + " used twice";
    if (!isSaneName(c.name ?? "", true)) return where + ": bad name";
    const opts = c.options ?? [];
    if (opts.length === 0) return where + " (" + c.id + "): no options";
    if (opts.length > MAX_OPTIONS) return where + " (" + c.id + "): " + opts.length + " options (at most " + MAX_OPTIONS + ")";
    for (let k = 0; k < opts.length; k++) {
      if (!isSaneName(opts[k], false)) return where + " (" + c.id + "): option " + (k + 1) + " has a bad name";
    }
    const m = c.maxMarks ?? 0;
    const marks = m === 0 ? 1 : m;
    if (marks > MAX_MARKS || marks > opts.length) {
      return where + " (" + c.id + "): max_marks " + marks + " above " + (opts.length < MAX_MARKS ? opts.length + " options" : MAX_MARKS);
    }
    slots += marks;
  }
  if (slots > MAX_CHOICE_SLOTS) return "the contests allow " + slots + " marks in all (at most " + MAX_CHOICE_SLOTS + ")";
  return null;
}

/**
 * Decodes and checks the election definition carried by an already verified SignedArtifact.
 * `stationId` is this device's station: a definition for another station is refused.
 */
export function parseElection(artifact: SignedArtifact, stationId: string): ElectionParse {
  if (artifact === null || typeof artifact !== "object") return fail("no artifact");
  if ((artifact.kind ?? 0) !== ArtifactKind.ELECTION_DEFINITION) return fail("not an election definition (artifact kind " + (artifact.kind ?? 0) + ")");
  if (!isSaneId(stationId)) return fail("this device has no station id");
  const body = artifact.body ?? new Uint8Array(0);
  if (body.length === 0) return fail("empty definition");
  if (body.length > MAX_BODY_BYTES) return fail("definition too large: " + body.length + " bytes (at most " + MAX_BODY_BYTES + ")");
  const r = tryDecode(decodeElectionDefinition, body);
  if (r.value === null) return fail("definition does not decode: " + r.error);
  const d = r.value;
  if (!isSaneId(d.electionId)) return fail("bad election id");
  if (!isSaneName(d.name ?? "", true)) return fail("bad election name");
  if (!isSaneId(d.stationId)) return fail("bad station id");
  if (d.stationId !== stationId) return fail("definition is for station " + d.stationId + ", this device is at " + stationId);
  if ((artifact.stationId ?? "") !== stationId) return fail("artifact is signed for station " + (artifact.stationId ?? "") + ", not " + stationId);
  if ((artifact.electionId ?? "") !== d.electionId) return fail("artifact election " + (artifact.electionId ?? "") + " differs from its body's " + d.electionId);
  const opens = d.pollsOpenMs ?? 0;
  const closes = d.pollsCloseMs ?? 0;
  if (opens > 0 && closes > 0 && closes <= opens) return fail("polls close before they open");
  const err = checkContests(d);
  if (err !== null) return fail(err);
  const list = d.contests ?? [];
  const contests: ContestDef[] = [];
  let slot = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    const m = c.maxMarks ?? 0;
    const marks = m === 0 ? 1 : m;
    contests.push({ id: c.id ?? "", name: c.name ?? "", options: c.options ?? [], maxMarks: marks, slot: slot, slots: marks });
    slot += marks;
  }
  const copy = new Uint8Array(body.length);
  copy.set(body);
  return {
    election: {
      id: d.electionId ?? "",
      name: d.name ?? "",
      stationId: d.stationId ?? "",
      contests: contests,
      pollsOpenMs: opens,
      pollsCloseMs: closes,
      registerSize: d.registerSize ?? 0,
      version: artifact.version ?? 0,
      body: copy,
      slots: slot,
    },
    error: null,
  };
}
