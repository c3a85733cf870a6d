use hookrelay_testkit as common;

// End-to-end tests of the Dify-compatible Workflow App API: every node type (the llm node
// against a fake OpenAI-compatible server on 127.0.0.1 that speaks the real streaming wire
// format), blocking / streaming (read incrementally) / async runs, idempotency, stop, ping,
// run timeouts, crash recovery, the completion webhook and its AutomationLog, bad input,
// logs and parameters, and start-up validation of app definitions.

mod helpers;
mod servers;

mod bad_input;
mod bounds;
mod completion;
mod examples;
mod failures;
mod instances;
mod llm;
mod logs;
mod node_runs;
mod nodes;
mod outage;
mod output_bounds;
mod run_body;
mod runs;
mod ssrf;
mod stop;
mod uploads;
mod uploads_at_once;
mod validation;
