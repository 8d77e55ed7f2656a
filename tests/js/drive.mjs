// Drive a Lamina engine with @aws-sdk/client-lambda v3 and print what happened as JSON.
//
//   node drive.mjs ENDPOINT STEPS_JSON
//
// STEPS_JSON is a list of {"op": NAME, "input": {...}}, where NAME is a Lambda command
// without its "Command" suffix (CreateFunction, Invoke, GetFunction, ...),
// "waitUntilFunctionActiveV2", or "paginateListFunctions" (every page; the output is
// {"pages", "Functions"}, MaxItems being the page size). In an input,
// {"ZipFile": {"path": P}} sends the file P as a Uint8Array, and a string Payload is sent
// UTF-8 encoded.
//
// Prints one JSON list, a result per step: {"ok": true, "output": ...} or
// {"ok": false, "error": {"name", "message", "httpStatusCode", "fault"}}. An Invoke output
// also has "PayloadText" (the decoded Payload), "PayloadJson" (parsed, if it is JSON) and
// "LogText" (the decoded LogResult).

import { readFileSync } from "node:fs";
import * as lambda from "@aws-sdk/client-lambda";

const [endpoint, stepsJson] = process.argv.slice(2);
if (!endpoint || !stepsJson) {
  console.error("usage: node drive.mjs ENDPOINT STEPS_JSON");
  process.exit(2);
}

const client = new lambda.LambdaClient({
  endpoint,
  region: "us-east-1",
  credentials: {  // DRIVE_*: a signed call to an engine run with --auth sigv4 (test_auth.py)
    accessKeyId: process.env.DRIVE_ACCESS_KEY_ID || "test",
    secretAccessKey: process.env.DRIVE_SECRET_ACCESS_KEY || "test",
  },
});

function prepare(input) {
  const prepared = { ...input };
  if (prepared.Code?.ZipFile?.path) {
    const zip = new Uint8Array(readFileSync(prepared.Code.ZipFile.path));
    prepared.Code = { ...prepared.Code, ZipFile: zip };
  }
  if (typeof prepared.Payload === "string") {
    prepared.Payload = new TextEncoder().encode(prepared.Payload);
  }
  return prepared;
}

function describe(output) {
  const { $metadata, ...rest } = output;
  const described = {
    ...rest, httpStatusCode: $metadata?.httpStatusCode, requestId: $metadata?.requestId,
  };
  if (output.Payload instanceof Uint8Array) {
    described.PayloadText = new TextDecoder().decode(output.Payload);
    try {
      described.PayloadJson = JSON.parse(described.PayloadText);
    } catch {
      described.PayloadJson = null;
    }
    delete described.Payload;
  }
  if (typeof output.LogResult === "string") {
    described.LogText = Buffer.from(output.LogResult, "base64").toString("utf8");
  }
  return described;
}

async function run(step) {
  const input = prepare(step.input ?? {});
  if (step.op === "waitUntilFunctionActiveV2") {
    const result = await lambda.waitUntilFunctionActiveV2(
      { client, maxWaitTime: 30, minDelay: 0.1, maxDelay: 1 }, input);
    return { state: result.state };
  }
  if (step.op === "paginateListFunctions") {
    const pages = [];
    const paginator = lambda.paginateListFunctions({ client, pageSize: input.MaxItems }, input);
    for await (const page of paginator) {
      pages.push(page);
    }
    return { pages: pages.length, Functions: pages.flatMap((page) => page.Functions ?? []) };
  }
  const Command = lambda[`${step.op}Command`];
  if (!Command) throw new Error(`unknown op ${step.op}`);
  return describe(await client.send(new Command(input)));
}

const results = [];
for (const step of JSON.parse(stepsJson)) {
  try {
    results.push({ ok: true, output: await run(step) });
  } catch (err) {
    results.push({
      ok: false,
      error: {
        name: err.name,
        message: err.message,
        httpStatusCode: err.$metadata?.httpStatusCode,
        fault: err.$fault,
      },
    });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
