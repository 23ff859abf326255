// Test helper (bridge.test.ts): runs an MqttBridge in its own process so that the test can kill it
// with SIGKILL and watch the broker publish the agent's will. Prints "connected" on each connect.
// Usage: tsx host/mqtt/testing/bridge_child.ts <url> <site> <agentId> <outbox path>
import { Outbox } from "../../outbox/outbox.ts";
import { MqttBridge } from "../bridge.ts";

const [url, site, agentId, path] = process.argv.slice(2);
if (!url || !site || !agentId || !path) {
  console.error("usage: bridge_child.ts <url> <site> <agentId> <outbox path>");
  process.exit(2);
}
const outbox = new Outbox({ path });
const bridge = new MqttBridge({ url, site, agentId, outbox });
bridge.on("connected", () => process.stdout.write("connected\n"));
bridge.on("problem", (e) => process.stderr.write(`bridge: ${e.message}\n`));
bridge.setDeviceStatus("VVD-CHILD", true);
bridge.start();
process.on("SIGTERM", () => {
  void bridge.close().then(() => {
    outbox.close();
    process.exit(0);
  });
});
