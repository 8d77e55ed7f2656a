// Streamed responses (awslambda.streamifyResponse), for InvokeWithResponseStream tests.

export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/plain");
  for (const [index, piece] of (event.pieces || ["one ", "two ", "three"]).entries()) {
    if (index > 0) await new Promise((resolve) => setTimeout(resolve, event.gapMs ?? 700));
    responseStream.write(piece);
  }
  if (event.fail) {
    throw new RangeError("broke mid-stream");
  }
  responseStream.end();
});
