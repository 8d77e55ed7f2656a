// Durable functions written with the AWS durable execution SDK for JavaScript (unmodified,
// bundled by esbuild as `sam build` bundles a Node.js function): a step, a wait, a callback.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

export const steps = withDurableExecution(async (event, context) => {
  const greeting = await context.step("greet", async () => `Hello, ${event.name}!`);
  const shout = await context.step("shout", async () => greeting.toUpperCase());
  return { greeting, shout };
});

export const waits = withDurableExecution(async (event, context) => {
  const before = await context.step("before", async () => {
    console.log("before the wait");
    return Date.now();
  });
  await context.wait("pause", { seconds: event.seconds });
  const after = await context.step("after", async () => {
    console.log("after the wait");
    return Date.now();
  });
  return { waitedMs: after - before };
});

export const approval = withDurableExecution(async (event, context) => {
  const decision = await context.waitForCallback("approval", async (callbackId) => {
    console.log(`CALLBACK ${callbackId}`);
  }, { timeout: { seconds: 60 } });
  return { order: event.order, decision: JSON.parse(decision) };
});
