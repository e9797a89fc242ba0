# Kassa: one image for every process (`serve`, `worker`, `migrate`, any CLI command).
# TypeScript runs through tsx's loader (a runtime dependency), so there is no build step and
# `npm ci --omit=dev` is enough. Checked statically by `npx tsx scripts/validate-docker.ts`.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    KASSA_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    KASSA_DATA_DIR=/var/lib/kassa

WORKDIR /app

# Dependencies first (cached until the lockfile changes). No runtime dependency needs an install script.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY workers ./workers

RUN mkdir -p /var/lib/kassa && chown node:node /var/lib/kassa
USER node

EXPOSE 3000
# /health is 200 when PostgreSQL, Redis and every configured chain watcher are healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

CMD ["node", "bin/kassa.js", "serve"]
