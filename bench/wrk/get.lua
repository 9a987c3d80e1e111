-- GET the URL given on the command line (headers such as Authorization come with -H).
dofile("report.lua")
