// One synchronous Invoke through an AWS SDK for JavaScript whose request timeout is shorter
// than the function's run, as an application would configure it.
//
//   node long_call.mjs ENDPOINT FUNCTION SDK TIMEOUT_MS PAYLOAD_JSON
//
// SDK is "v2" (npm aws-sdk: httpOptions.timeout, 3 retries, no invocation id) or "v3"
// (@aws-sdk/client-lambda: requestTimeout that throws, 3 attempts, amz-sdk-invocation-id).
// Prints {"ok", "payload" | "error", "elapsedMs"} as JSON.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [endpoint, functionName, sdk, timeoutText, payload] = process.argv.slice(2);
const timeout = Number(timeoutText);
const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const started = Date.now();

async function viaV2() {
  const AWS = require("aws-sdk");
  const client = new AWS.Lambda({ endpoint, region: "us-east-1", credentials,
                                  httpOptions: { timeout } });
  const output = await client.invoke({ FunctionName: functionName, Payload: payload }).promise();
  return output.Payload.toString();
}

async function viaV3() {
  const { LambdaClient, InvokeCommand } = await import("@aws-sdk/client-lambda");
  const { NodeHttpHandler } = await import("@smithy/node-http-handler");
  const client = new LambdaClient({
    endpoint, region: "us-east-1", credentials,
    requestHandler: new NodeHttpHandler({ requestTimeout: timeout, throwOnRequestTimeout: true }),
  });
  const output = await client.send(new InvokeCommand({
    FunctionName: functionName, Payload: new TextEncoder().encode(payload) }));
  return new TextDecoder().decode(output.Payload);
}

try {
  const text = await (sdk === "v2" ? viaV2() : viaV3());
  console.log(JSON.stringify({ ok: true, payload: JSON.parse(text), elapsedMs: Date.now() - started }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: `${error.name}: ${error.message}`,
                               elapsedMs: Date.now() - started }));
}
