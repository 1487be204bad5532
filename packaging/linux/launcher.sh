#!/bin/sh
# /usr/bin/kbuilder: the installed bundle in /opt/kbuilder, with every argument.
exec /opt/kbuilder/kbuilder "$@"
