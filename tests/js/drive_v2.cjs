// Drive a Lamina engine with the AWS SDK for JavaScript v2 (`aws-sdk`) and print what
// happened as JSON: the v2 SDK signs with its own SigV4 code, not v3's @smithy/signature-v4.
//
//   DRIVE_ACCESS_KEY_ID=... DRIVE_SECRET_ACCESS_KEY=... node drive_v2.cjs ENDPOINT STEPS_JSON
//
// STEPS_JSON is a list of {"op": NAME, "input": {...}}, NAME a method of AWS.Lambda with its
// first letter upper-case (ListFunctions, Invoke, ...). Prints one JSON list, a result per
// step: {"ok": true, "output": ...} (an Invoke's Payload decoded as text) or
// {"ok": false, "error": {"code", "message", "statusCode"}}.

process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1";
const AWS = require("aws-sdk");

const [endpoint, stepsJson] = process.argv.slice(2);
if (!endpoint || !stepsJson) {
  console.error("usage: node drive_v2.cjs ENDPOINT STEPS_JSON");
  process.exit(2);
}

const lambda = new AWS.Lambda({
  endpoint,
  region: process.env.DRIVE_REGION || "us-east-1",
  maxRetries: 0,
  credentials: new AWS.Credentials(
    process.env.DRIVE_ACCESS_KEY_ID || "test",
    process.env.DRIVE_SECRET_ACCESS_KEY || "test",
  ),
});

async function run() {
  const results = [];
  for (const step of JSON.parse(stepsJson)) {
    const method = step.op.charAt(0).toLowerCase() + step.op.slice(1);
    try {
      const output = await lambda[method](step.input || {}).promise();
      if (output.Payload !== undefined) output.Payload = output.Payload.toString();
      results.push({ ok: true, output });
    } catch (error) {
      results.push({
        ok: false,
        error: { code: error.code, message: error.message, statusCode: error.statusCode },
      });
    }
  }
  console.log(JSON.stringify(results));
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
