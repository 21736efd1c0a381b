#include "pshm.h"
int main(void) { return 0; }
