#pragma once
// Include Boost.Asio/Beast only through this header.
// Why: Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>, which g++ 12 in C++20 mode no longer pulls in transitively.
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
