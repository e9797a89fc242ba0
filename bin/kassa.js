#!/usr/bin/env node
// Entry point of the `kassa` command. Kassa is written in TypeScript and runs through tsx's
// loader, so there is no build step between a git clone and a running server.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
