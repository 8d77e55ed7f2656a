const started = await Promise.resolve(Date.now());

export const handler = async (event, context) => ({
  esm: true,
  event,
  startedBeforeInvoke: started <= Date.now(),
  requestId: context.awsRequestId,
});
