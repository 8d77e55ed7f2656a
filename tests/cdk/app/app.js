// A CDK application for Lamina's deploy tests: two stacks (the data stack's queue is
// imported by the service stack), a Python and a Node.js function, an SQS event source,
// an EventBridge schedule, an HTTP API route (aws-apigatewayv2-integrations) and a REST API
// (LambdaRestApi). `cdk synth -c logRetention=1` adds CDK's LogRetention custom resource.
const path = require('path');
const cdk = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const sqs = require('aws-cdk-lib/aws-sqs');
const events = require('aws-cdk-lib/aws-events');
const targets = require('aws-cdk-lib/aws-events-targets');
const sources = require('aws-cdk-lib/aws-lambda-event-sources');
const apigwv2 = require('aws-cdk-lib/aws-apigatewayv2');
const integrations = require('aws-cdk-lib/aws-apigatewayv2-integrations');
const apigw = require('aws-cdk-lib/aws-apigateway');
const logs = require('aws-cdk-lib/aws-logs');

const app = new cdk.App();

const data = new cdk.Stack(app, 'ShopData');
const orders = new sqs.Queue(data, 'Orders', { visibilityTimeout: cdk.Duration.seconds(60) });

const service = new cdk.Stack(app, 'ShopService');
const worker = new lambda.Function(service, 'Worker', {
  runtime: lambda.Runtime.PYTHON_3_12,
  handler: 'app.handler',
  code: lambda.Code.fromAsset(path.join(__dirname, 'functions', 'py')),
  environment: { GREETING: app.node.tryGetContext('greeting') || 'hello' },
  timeout: cdk.Duration.seconds(10),
});
worker.addEventSource(new sources.SqsEventSource(orders, { batchSize: 5 }));

const web = new lambda.Function(service, 'Web', {
  runtime: lambda.Runtime.NODEJS_20_X,
  handler: 'index.handler',
  code: lambda.Code.fromAsset(path.join(__dirname, 'functions', 'node')),
  environment: { QUEUE_URL: orders.queueUrl },
});

new events.Rule(service, 'Nightly', {
  schedule: events.Schedule.rate(cdk.Duration.days(1)),
  targets: [new targets.LambdaFunction(worker, {
    event: events.RuleTargetInput.fromObject({ source: 'nightly' }),
  })],
});

const http = new apigwv2.HttpApi(service, 'Http');
http.addRoutes({
  path: '/hello/{name}',
  methods: [apigwv2.HttpMethod.GET],
  integration: new integrations.HttpLambdaIntegration('WebIntegration', web),
});

new apigw.LambdaRestApi(service, 'Rest', { handler: worker });

if (app.node.tryGetContext('logRetention')) {
  new lambda.Function(service, 'Kept', {
    runtime: lambda.Runtime.PYTHON_3_12,
    handler: 'app.handler',
    code: lambda.Code.fromAsset(path.join(__dirname, 'functions', 'py')),
    logRetention: logs.RetentionDays.ONE_WEEK,
  });
}

new cdk.CfnOutput(service, 'HttpUrl', { value: http.apiEndpoint });
new cdk.CfnOutput(service, 'WorkerName', { value: worker.functionName });
new cdk.CfnOutput(service, 'WebName', { value: web.functionName });
