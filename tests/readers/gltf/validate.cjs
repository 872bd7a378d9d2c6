// Validates glTF/GLB files with the Khronos glTF-Validator (npm package gltf-validator):
//   node validate.cjs FILE...
// Prints one line per file (errors, warnings, infos, hints, and every error/warning message);
// exit 0 when every file has 0 errors and 0 warnings, 1 otherwise, 77 when the validator is not
// installed (run scripts/setup.sh, which runs `npm ci` here).
"use strict";
const fs = require("fs");
const path = require("path");
let validator;
try {
  validator = require("gltf-validator");
} catch (e) {
  console.error("gltf-validator is not installed in " + __dirname + " (run scripts/setup.sh: npm ci)");
  process.exit(77);
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node validate.cjs FILE...");
    return 2;
  }
  let bad = 0;
  for (const file of files) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {
      uri: path.basename(file),
      externalResourceFunction: (uri) =>
        new Promise((resolve, reject) =>
          fs.readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)), (err, data) =>
            err ? reject(err.toString()) : resolve(new Uint8Array(data)))),
    });
    const i = report.issues;
    console.log(`${file}: ${i.numErrors} errors, ${i.numWarnings} warnings, ${i.numInfos} infos, ${i.numHints} hints` +
                ` (${report.validatorVersion})`);
    for (const m of i.messages) {
      if (m.severity <= 1) console.log(`  ${m.severity === 0 ? "error" : "warning"} ${m.code} at ${m.pointer || "-"}: ${m.message}`);
    }
    if (i.numErrors > 0 || i.numWarnings > 0) ++bad;
  }
  return bad > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  console.error(String(e));
  process.exit(1);
});
