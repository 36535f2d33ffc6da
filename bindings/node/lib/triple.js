'use strict';
// The platform name of the addon file and of its prebuilt package:
// <platform>-<arch>[-gnu|-musl], as napi-rs names them.
function triple() {
  let libc = '';
  if (process.platform === 'linux') {
    try {
      const r = process.report.getReport();
      libc = (typeof r === 'string' ? JSON.parse(r) : r).header.glibcVersionRuntime ? '-gnu' : '-musl';
    } catch {
      libc = '-gnu';
    }
  }
  return `${process.platform}-${process.arch}${libc}`;
}
module.exports = { triple: triple() };
