// The reliability suite's scenarios by name: each plays one profile ("short" for CI, "long" for
// npm run test:reliability) and returns its counts, with `ok` and the problems found.

import { runWarehouse } from "./warehouse.ts";
import { runAgentKill } from "./agent_kill.ts";
import { runElectionDay } from "./election_day.ts";

export interface ScenarioCounts {
  scenario: string;
  profile: string;
  ok: boolean;
  problems: string[];
}

export type Scenario = (profile: "short" | "long", log?: (s: string) => void) => Promise<ScenarioCounts>;

export const SCENARIOS = {
  warehouse: runWarehouse,
  "agent-kill": runAgentKill,
  "election-day": runElectionDay,
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof SCENARIOS;
