#!/usr/bin/env node
// Entry point of the `milvus-guard` CLI. The project runs its TypeScript sources directly
// through tsx, so `npx milvus-guard ...` works in a fresh clone without a build step.
import { register } from 'tsx/esm/api';

// The AWS SDK versions this project pins (package.json) support Node 20; the SDK's multi-line
// notice that later releases will need Node 22 would otherwise precede every command's output,
// including its one-line errors. Raising the SDK past those releases raises `engines` with it.
// Set the variable to anything else to see the notice.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
