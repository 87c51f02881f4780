#!/usr/bin/env python3
"""Writes a small OCI image archive (an OCI layout in a tar) for scripts/faults.sh: a static
busybox with its applets, and FILLER small files so an import takes long enough to be
killed halfway. Local only: no registry is involved.
    mkimage.py BUSYBOX OUT.tar NAME FILLER"""
import gzip
import hashlib
import io
import json
import sys
import tarfile


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def layer(busybox, filler):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("bin", "tmp", "box", "filler"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        data = open(busybox, "rb").read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        t.addfile(info, io.BytesIO(data))
        for applet in ("sh", "cat", "echo", "head", "sleep", "yes", "dd", "ls", "true"):
            info = tarfile.TarInfo("bin/" + applet)
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        for i in range(filler):
            body = (b"%d\n" % i) * 64
            info = tarfile.TarInfo("filler/%d" % i)
            info.size, info.mode = len(body), 0o644
            t.addfile(info, io.BytesIO(body))
    tar = raw.getvalue()
    return tar, gzip.compress(tar, compresslevel=1, mtime=0)


def main():
    busybox, out, name, filler = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tar, gz = layer(busybox, filler)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer_digest, _ = blob(gz)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "WorkingDir": "/box"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    config_digest, _ = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(gz)}],
    }).encode()
    manifest_digest, _ = blob(manifest)
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": name}}],
    }).encode()
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": index,
    }
    for data in (gz, config, manifest):
        files["blobs/sha256/" + hashlib.sha256(data).hexdigest()] = data
    with tarfile.open(out, "w") as t:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
