exports.echo = async (event) => event;

exports.fail = async (event) => {
  const error = new TypeError(event.message || "node failure");
  throw error;
};

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { viaCallback: true, event }), 10);
};

exports.describe = async (event, context) => {
  console.log("describing", context.awsRequestId);
  return {
    functionName: context.functionName,
    memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
    awsRequestId: context.awsRequestId,
    env: process.env,
    pid: process.pid,
    argv: process.argv,
    cwd: process.cwd(),
    tzOffset: new Date(0).getTimezoneOffset(),
    fromNodePath: require("sibling").name,
  };
};

exports.sleep = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, (event.seconds || 1) * 1000));
  return { slept: event.seconds || 1, pid: process.pid };
};

// The event echoed, or `event.bytes` characters when asked for a response of that size.
exports.sized = async (event) => (event.bytes === undefined ? event : "x".repeat(event.bytes));
