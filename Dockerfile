# Kassa: one image for every process (`serve`, `worker`, `migrate`, any CLI command).
# `node scripts/build.mjs` compiles the sources into dist/ (esbuild, a runtime dependency, like tsx),
# which bin/kassa.js runs while it matches the sources next to it (it checks a hash of them; the
# sources stay in the image so that it could fall back to them through tsx).
# Checked statically by `npx tsx scripts/validate-docker.ts`.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    KASSA_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    KASSA_DATA_DIR=/var/lib/kassa

WORKDIR /app

# Dependencies first (cached until the lockfile changes). No runtime dependency needs an install script.
# --ignore-scripts skips Kassa's own postinstall too, so the postgres.js fix (docs/operations.md,
# "Database connection loss") is applied explicitly.
COPY package.json package-lock.json ./
COPY scripts/patch-dependencies.mjs ./scripts/patch-dependencies.mjs
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && node scripts/patch-dependencies.mjs && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
COPY workers ./workers
# The SDK's sources: `kassa listen` shares its server-sent-events parser (bin/source-hash.js SHARED_FILES).
COPY packages ./packages
RUN node scripts/build.mjs

RUN mkdir -p /var/lib/kassa && chown node:node /var/lib/kassa
USER node

EXPOSE 3000
# /health is 200 when PostgreSQL, Redis and every configured chain watcher are healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

CMD ["node", "bin/kassa.js", "serve"]
