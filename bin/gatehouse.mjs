#!/usr/bin/env node
// Entry point of the `gatehouse` command: runs the compiled CLI (npm start builds it first).
import { debugOutput, main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    // One line for an operator; the stack trace only when asked for (it is for a bug report, not a fix).
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const stack = err instanceof Error && err.stack ? err.stack : '';
    process.stderr.write(
      debugOutput()
        ? `gatehouse: ${stack || message}\n`
        : `gatehouse: ${message} (GATEHOUSE_LOG_LEVEL=debug shows the stack trace)\n`,
    );
    process.exit(1);
  },
);
