#!/bin/sh
# A ptxas that rejects everything (moec/cuda-artifact.test).
echo "ptxas fatal   : Unresolved extern function '__nv_missing'" >&2
exit 255
