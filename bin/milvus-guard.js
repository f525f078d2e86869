#!/usr/bin/env node
// Entry point of the `milvus-guard` CLI. The project runs its TypeScript sources directly
// through tsx, so `npx milvus-guard ...` works in a fresh clone without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
