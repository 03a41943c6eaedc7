// anyturn — TURN/STUN relay server. Everything but this line lives in anyturn_app.
#include <anyturn/app/app.hpp>

#include <iostream>

int main(int argc, char** argv) { return anyturn::app::run_main(argc, argv, std::cout, std::cerr); }
