// InvokeWithResponseStream through @aws-sdk/client-lambda v3; prints each event as it came.
//
//   node stream_call.mjs ENDPOINT FUNCTION PAYLOAD_JSON
//
// Prints a JSON list: {"type": "PayloadChunk", "text", "atMs"} …, then
// {"type": "InvokeComplete", "ErrorCode", "ErrorDetails", "atMs"}.

import { LambdaClient, InvokeWithResponseStreamCommand } from "@aws-sdk/client-lambda";

const [endpoint, functionName, payload] = process.argv.slice(2);
const client = new LambdaClient({
  endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" },
});
const started = Date.now();
const output = await client.send(new InvokeWithResponseStreamCommand({
  FunctionName: functionName, Payload: new TextEncoder().encode(payload) }));
const events = [];
for await (const event of output.EventStream) {
  const atMs = Date.now() - started;
  if (event.PayloadChunk) {
    events.push({ type: "PayloadChunk", text: new TextDecoder().decode(event.PayloadChunk.Payload), atMs });
  } else if (event.InvokeComplete) {
    events.push({ type: "InvokeComplete", ...event.InvokeComplete, atMs });
  }
}
console.log(JSON.stringify(events));
