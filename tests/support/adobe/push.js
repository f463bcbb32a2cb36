// Pushes events to Message Center with Adobe's Campaign JavaScript SDK (@adobe/acc-js-sdk), exactly as an
// existing Adobe Campaign client does, and prints what the SDK answered as one JSON document on stdout.
//
// Used by tests/tests/adobe_soap.rs. Usage: node push.js '<request JSON>' where the request is
//   {
//     "endpoint": "http://127.0.0.1:PORT",
//     "credentials": { "sessionToken": "mc/password" } | { "login": "mc", "password": "…" },
//     "calls": [ { "call": "rtPushEvent" | "rtPushEventXml" | "batchPushEvent" | "rtPushEvents", "event": … } ]
//   }
// `event` is a SimpleJson object for rtPushEvent / batchPushEvent / rtPushEvents (the SDK turns it into
// XML; for rtPushEvents `{ "rtEvent": [ … ] }`) and an XML string for rtPushEventXml. Each call's result
// is { "ok": true, "plId": "…" } (rtPushEvents: "plIds": [ "…", … ]) or
// { "ok": false, "statusCode", "faultCode", "faultString", "detail", "message" }; a failure of the script
// itself exits with status 2 and a message on stderr.
"use strict";

const sdk = require("@adobe/acc-js-sdk");

async function connect(endpoint, credentials) {
  const parameters = credentials.sessionToken !== undefined
    ? sdk.ConnectionParameters.ofSessionToken(endpoint, credentials.sessionToken)
    : sdk.ConnectionParameters.ofUserAndPassword(endpoint, credentials.login, credentials.password);
  const client = await sdk.init(parameters);
  await client.logon();
  return client;
}

async function invoke(client, call) {
  const NLWS = client.NLWS;
  switch (call.call) {
    case "rtPushEvent":
      return NLWS.nmsRtEvent.pushEvent(call.event);
    case "rtPushEventXml":
      return NLWS.xml.nmsRtEvent.pushEvent(sdk.DomUtil.parse(call.event));
    case "batchPushEvent":
      return NLWS.nmsBatchEvent.pushEvent(call.event);
    case "rtPushEvents":
      return NLWS.nmsRtEvent.pushEvents(call.event);
    default:
      throw new Error(`unknown call ${call.call}`);
  }
}

function failure(error) {
  return {
    ok: false,
    statusCode: error.statusCode,
    faultCode: error.faultCode,
    faultString: error.faultString,
    detail: error.detail,
    message: String(error.message || error),
  };
}

async function main() {
  const request = JSON.parse(process.argv[2]);
  const results = [];
  let client;
  try {
    client = await connect(request.endpoint, request.credentials);
  } catch (error) {
    process.stdout.write(JSON.stringify({ logon: failure(error), results }) + "\n");
    return;
  }
  for (const call of request.calls) {
    try {
      const answer = await invoke(client, call);
      if (call.call === "rtPushEvents") {
        // A document, in SimpleJson: { plId: [ { $: "…" }, … ] } (a single id is not an array).
        const ids = [].concat(answer.plId || []).map((id) => String(id.$ !== undefined ? id.$ : id));
        results.push({ ok: true, plIds: ids });
      } else {
        results.push({ ok: true, plId: String(answer) });
      }
    } catch (error) {
      results.push(failure(error));
    }
  }
  process.stdout.write(JSON.stringify({ logon: { ok: true }, results }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`push.js failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(2);
});
