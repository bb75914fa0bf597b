#pragma once
// JSON → record attributes, shared by the sources that read JSON (SCIM,
// generic HTTP JSON). Pure functions; thread safe.
//
// Flattening rules (the README documents them for operators):
// - Object members become attributes named by their path, joined with '.':
//   {"name": {"givenName": "Zoë"}} → name.givenName = ["Zoë"].
// - Arrays are multi-valued: ["a", "b"] → two values. An array of objects
//   spreads each member over the array: [{"value": "x"}, {"value": "y"}] under
//   "emails" → emails.value = ["x", "y"] (values in array order).
// - Strings stay as they are; true/false → "true"/"false"; integers in decimal;
//   other numbers in JSON's shortest form; null → the attribute is present with
//   no value (so `default` applies).
// - Attribute order: members sorted by name (nlohmann::json keeps objects sorted).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/record.h"

namespace dirsync::core {

// The attributes of one JSON value (usually an object) under `prefix` ("" for none).
std::vector<Attribute> flatten_json(const nlohmann::json& value, const std::string& prefix = "");

// The text values of one JSON value: a scalar gives one value (null none), an
// array gives its scalars' values (recursively); objects inside contribute nothing.
std::vector<std::string> json_values(const nlohmann::json& value);

// One scalar as attribute text (see the rules above); "" for null, objects and arrays.
std::string json_scalar_text(const nlohmann::json& value);

}  // namespace dirsync::core
