const VERSION = 'v1';

exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    from: 'node', version: VERSION, queue: process.env.QUEUE_URL,
    name: (event.pathParameters || {}).name, routeKey: event.routeKey,
  }),
});
