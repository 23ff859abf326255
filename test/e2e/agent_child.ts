// Runs a host agent in its own process (so a test can SIGKILL it): argv[2] is the config file.
// Prints "ready <controlUrl>" once serving.

import { loadAgentConfig, startAgent } from "../../host/agent/agent.ts";

const running = await startAgent(loadAgentConfig(process.argv[2]));
console.log(`ready ${running.controlUrl}`);
process.on("SIGTERM", () => {
  void running.stop().then(() => process.exit(0));
});
