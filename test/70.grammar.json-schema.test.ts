import { describe, expect, it } from "vitest";
import { Grammar, GrammarError, jsonSchemaToGbnf, type JsonSchema } from "../lib/grammar/index.js";

function accepts(schema: JsonSchema, texts: string[], rejects: string[]): void {
  const grammar = Grammar.fromJsonSchema(schema);
  for (const text of texts) expect(grammar.matches(text), `accept ${text}`).toBe(true);
  for (const text of rejects) expect(grammar.matches(text), `reject ${text}`).toBe(false);
}

function errorOf(run: () => unknown): GrammarError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GrammarError);
    return error as GrammarError;
  }
  return expect.fail("expected a GrammarError");
}

describe("70 grammar: JSON schema keywords", () => {
  it("object: required properties always, optional ones maybe, in declared order, nothing else", () => {
    const schema = { type: "object", properties: { a: { type: "integer" }, b: { type: "boolean" }, c: { type: "null" } }, required: ["b"] } as const;
    accepts(
      schema,
      ['{"b":true}', '{"a":1,"b":false}', '{"b":true,"c":null}', '{"a":-3,"b":true,"c":null}'],
      ["{}", '{"a":1}', '{"b":true,"a":1}', '{"b":true,"d":1}', '{"b":true,}', '{,"b":true}', '{"b":true "c":null}'],
    );
  });

  it("object: property names with quotes, backslashes and non-ASCII are written as JSON strings", () => {
    const keys = ['say "hi"', "a\\b", "ключ", "tab\there"];
    const schema = { type: "object", properties: Object.fromEntries(keys.map((key) => [key, { type: "integer" }])), required: keys } as const;
    const value = Object.fromEntries(keys.map((key, i) => [key, i]));
    const grammar = Grammar.fromJsonSchema(schema);
    expect(grammar.matches(JSON.stringify(value))).toBe(true);
    expect(grammar.parse(JSON.stringify(value))).toEqual(value);
    expect(grammar.matches(JSON.stringify(value).replace("ключ", "kljuch"))).toBe(false);
  });

  it("object: all-optional properties allow {} and any in-order subset", () => {
    accepts(
      { type: "object", properties: { x: { type: "integer" }, y: { type: "integer" } } },
      ["{}", '{"x":1}', '{"y":2}', '{"x":1,"y":2}'],
      ['{"y":2,"x":1}', '{"x":1,}', '{,}'],
    );
  });

  it("object without properties admits any object; additionalProperties false admits only {}", () => {
    accepts({ type: "object" }, ['{}', '{"k":[1,{"z":null}],"q":"v"}'], ["[]", '{"k"}']);
    accepts({ type: "object", additionalProperties: false }, ["{}"], ['{"k":1}']);
  });

  it("whitespace: one optional space before the value and after ':' and ',', nothing else", () => {
    const schema = { type: "object", properties: { a: { type: "array", items: { type: "integer" } }, b: { type: "integer" } }, required: ["a", "b"] } as const;
    accepts(
      schema,
      ['{"a":[1,2],"b":3}', ' {"a": [1, 2], "b": 3}'],
      ['  {"a":[1],"b":3}', '{"a" :[1],"b":3}', '{ "a":[1],"b":3}', '{"a":[1],"b":3} ', '{"a":[1],\n"b":3}', '{"a":[ 1],"b":3}', '{"a":[1],  "b":3}'],
    );
  });

  it("array: minItems and maxItems bound the count", () => {
    accepts({ type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 3 }, ["[true]", "[true,false]", "[true, false, true]"], ["[]", "[true,true,true,true]", "[true,]"]);
    accepts({ type: "array", items: { type: "null" }, maxItems: 0 }, ["[]"], ["[null]"]);
    accepts({ type: "array", minItems: 2 }, ['[1,"x"]', '[[],{}, null]'], ["[1]"]);
  });

  it("string: any Unicode, JSON escapes, no raw controls or quotes, no surrogate \\u escapes", () => {
    accepts(
      { type: "string" },
      ['""', '"héllo 日本 😀"', '"a\\"b\\\\c\\/d\\n\\t\\u00e9\\uFFFF"', '"\u2028"'],
      ['"a', '"a"b"', '"\t"', '"\n"', '"\\x"', '"\\u12"', '"\\ud83d\\ude00"', "'a'"],
    );
  });

  it("string: minLength and maxLength count characters, not bytes", () => {
    accepts({ type: "string", minLength: 2, maxLength: 3 }, ['"ab"', '"日本語"', '"😀😀"', '"a\\n"'], ['"a"', '"abcd"', '"日本語x"']);
  });

  it("string: enum and const admit exactly their values", () => {
    accepts({ type: "string", enum: ["red", "grün", 'say "hi"'] }, ['"red"', '"grün"', '"say \\"hi\\""'], ['"blue"', '"re"', '"red "']);
    accepts({ const: "only" }, ['"only"'], ['"Only"']);
  });

  it("enum members that violate sibling keywords are dropped", () => {
    accepts({ type: "string", enum: ["ok", "toolong", 3], maxLength: 3 }, ['"ok"'], ['"toolong"', "3"]);
  });

  it("number and integer: JSON number syntax with bounded digit counts", () => {
    accepts({ type: "number" }, ["0", "-0", "12.5", "1e5", "-1.25E-07", "9999999999999999"], ["01", "1.", ".5", "+1", "1e", "1e123", "NaN", "12345678901234567"]);
    accepts({ type: "integer" }, ["0", "-17", "1234567890123456"], ["1.0", "1e3", "-", "00"]);
  });

  it("boolean and null", () => {
    accepts({ type: "boolean" }, ["true", "false"], ["True", "1", "null"]);
    accepts({ type: "null" }, ["null"], ["nil", ""]);
  });

  it("oneOf / anyOf admit any option; a type list admits any of its types", () => {
    accepts({ oneOf: [{ type: "integer" }, { type: "string", maxLength: 2 }] }, ["3", '"ab"'], ['"abc"', "true"]);
    accepts({ anyOf: [{ type: "null" }, { type: "array", items: { type: "integer" }, maxItems: 1 }] }, ["null", "[]", "[5]"], ["[1,2]"]);
    accepts({ type: ["string", "null"], maxLength: 1 }, ["null", '"a"'], ['"ab"', "0"]);
  });

  it("nesting: arrays of objects of arrays", () => {
    const schema = {
      type: "array",
      items: { type: "object", properties: { id: { type: "integer" }, kids: { type: "array", items: { enum: [1, "x", null] } } }, required: ["id", "kids"] },
    } as const;
    accepts(schema, ['[{"id":1,"kids":[1,"x",null]},{"id":2,"kids":[]}]', "[]"], ['[{"id":1}]', '[{"id":1,"kids":[2]}]']);
  });

  it("true and {} admit any JSON value, nested", () => {
    for (const schema of [true, {}] as const) accepts(schema, ['{"a":[1,{"b":null}],"c":"d"}', "[]", "-1.5", '"s"', "null"], ["{", "[1,]", "undefined"]);
  });

  it("an optional property whose schema can never hold is never generated", () => {
    accepts({ type: "object", properties: { a: { type: "integer" }, never: { enum: [] } }, required: ["a"] }, ['{"a":1}'], ['{"a":1,"never":1}']);
  });
});

describe("70 grammar: JSON schemas outside the subset, malformed, or unsatisfiable", () => {
  for (const [schema, keyword] of [
    [{ type: "string", pattern: "^a" }, "pattern"],
    [{ $ref: "#/$defs/x" }, "$ref"],
    [{ type: "integer", minimum: 0 }, "minimum"],
    [{ type: "string", format: "email" }, "format"],
    [{ allOf: [{ type: "string" }] }, "allOf"],
    [{ type: "object", properties: { deep: { type: "array", items: { not: {} } } } }, "not"],
    [{ type: "array", prefixItems: [{ type: "string" }] }, "prefixItems"],
    [{ type: "object", oneOf: [{ type: "object" }] }, "type"],
  ] as const) {
    it(`"${keyword}" is rejected with JSON_SCHEMA_UNSUPPORTED naming it`, () => {
      const error = errorOf(() => Grammar.fromJsonSchema(schema as JsonSchema));
      expect(error.code).toBe("JSON_SCHEMA_UNSUPPORTED");
      expect(error.keyword).toBe(keyword);
      expect(error.message).toContain(`"${keyword}"`);
    });
  }

  it("the path of a nested unsupported keyword is reported", () => {
    const error = errorOf(() => Grammar.fromJsonSchema({ type: "object", properties: { "a/b": { type: "array", items: { format: "x" } } } }));
    expect(error.path).toBe("/properties/a~1b/items");
  });

  for (const [schema, path] of [
    [{ type: "strin" }, "/type"],
    [{ type: "array", minItems: -1 }, "/minItems"],
    [{ type: "string", maxLength: 1.5 }, "/maxLength"],
    [{ type: "object", required: "a" }, "/required"],
    [{ oneOf: [] }, "/oneOf"],
    [{ enum: "a" }, "/enum"],
    [{ const: Infinity }, "/const"],
    [{ type: "object", properties: { a: 5 } }, "/properties/a"],
  ] as const) {
    it(`${JSON.stringify(schema, (_, v) => (v === Infinity ? "Infinity" : v))} is JSON_SCHEMA_INVALID at ${path}`, () => {
      const error = errorOf(() => Grammar.fromJsonSchema(schema as unknown as JsonSchema));
      expect(error.code).toBe("JSON_SCHEMA_INVALID");
      expect(error.path).toBe(path);
    });
  }

  for (const schema of [
    false,
    { enum: [] },
    { type: "array", minItems: 3, maxItems: 2 },
    { type: "string", minLength: 5, maxLength: 4 },
    { type: "integer", const: "seven" },
    { type: "object", properties: { a: false }, required: ["a"] },
    { type: "object", properties: {}, required: ["x"], additionalProperties: false },
    { type: "array", items: false, minItems: 1 },
    { anyOf: [{ enum: [] }, false] },
  ] as const) {
    it(`${JSON.stringify(schema)} is JSON_SCHEMA_UNSATISFIABLE`, () => {
      expect(errorOf(() => Grammar.fromJsonSchema(schema as JsonSchema)).code).toBe("JSON_SCHEMA_UNSATISFIABLE");
    });
  }
});

describe("70 grammar: JsonGrammar.parse never returns output the grammar did not finish", () => {
  const grammar = Grammar.fromJsonSchema({ type: "object", properties: { a: { type: "array", items: { type: "integer" } } }, required: ["a"] });

  it("returns the parsed value of a complete match (string or bytes)", () => {
    expect(grammar.parse('{"a":[1, 2]}')).toEqual({ a: [1, 2] });
    expect(grammar.parse(new TextEncoder().encode(' {"a":[]}'))).toEqual({ a: [] });
  });

  it("output cut short is GRAMMAR_INCOMPLETE, output off the grammar is GRAMMAR_MISMATCH", () => {
    for (const cut of ['{"a":[1,', "", '{"a":[1]']) expect(errorOf(() => grammar.parse(cut)).code).toBe("GRAMMAR_INCOMPLETE");
    for (const wrong of ['{"a":[1]}x', '{"b":[]}', "[]"]) expect(errorOf(() => grammar.parse(wrong)).code).toBe("GRAMMAR_MISMATCH");
  });

  it("the generated GBNF is readable and re-parses to the same language", () => {
    const gbnf = jsonSchemaToGbnf({ type: "object", properties: { name: { type: "string" } }, required: ["name"] });
    expect(gbnf).toMatch(/^root ::= " "\? /);
    expect(gbnf).toContain('"\\"name\\"" ":" " "?');
    const again = Grammar.fromGbnf(gbnf);
    expect(again.matches('{"name":"x"}')).toBe(true);
    expect(again.matches('{"name":1}')).toBe(false);
  });
});
