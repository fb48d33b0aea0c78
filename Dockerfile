# cri-mesos image: builds the addon, the launch helper and the TypeScript, and
# runs the daemon. It must run privileged, with the host's PID, network and
# IPC namespaces and host mounts (see deploy/daemonset.yaml).
FROM node:20-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 busybox-static iproute2 \
 && rm -rf /var/lib/apt/lists/*

# The build runs node-gyp with --nodedir=/usr (Debian's layout). This image
# keeps the Node headers under /usr/local/include/node.
RUN [ -e /usr/include/node ] || ln -s /usr/local/include/node /usr/include/node

WORKDIR /opt/cri-mesos

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY api ./api
COPY addon/binding.gyp ./addon/binding.gyp
COPY addon/src ./addon/src
COPY addon/common ./addon/common
COPY addon/launch ./addon/launch
COPY src ./src
COPY hack ./hack
# tsc compiles test/ too (tsconfig include), and hack/ imports test/helpers.
COPY test ./test
COPY deploy ./deploy
COPY README.md ./

RUN npm run build

# overlayfs refuses an upper dir on overlayfs: keep the work dir on a volume
# (or a hostPath, as in deploy/daemonset.yaml).
VOLUME ["/var/lib/cri-mesos"]

CMD ["bin/cri-mesos", "daemon"]
