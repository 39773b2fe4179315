# nvmftest as a container image: the load generator of
# 'nvmftest bench --kubernetes' (one pod per shard), or any nvmftest
# command. A static binary (no cgo) on distroless/static, run as the
# unprivileged user 65532; nvmftest needs no capabilities to load a
# target over TCP.
#
#   docker build -t REGISTRY/nvmftest:TAG --build-arg REVISION=$(git rev-parse HEAD) .
#   docker push REGISTRY/nvmftest:TAG
#   docker run --rm REGISTRY/nvmftest:TAG bench -a 10.0.0.5 -n NQN --rw randread --runtime 10 --time_based
#
# Build for other nodes' architectures with buildx:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/nvmftest:TAG --push .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG REVISION=""
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that runs on distroless/static (no libc).
# -s -w drop the symbol table and DWARF (about a quarter of the size);
# -trimpath keeps build paths out of it.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.revision=${REVISION}" -o /out/nvmftest ./cmd/nvmftest

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nvmftest /nvmftest
# The Job's pods also set runAsNonRoot and this UID; a plain docker run
# gets it from here. /tmp is where a shard writes its report directory
# (the Job mounts an emptyDir there: the root filesystem is read-only).
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/nvmftest"]
CMD ["--help"]
