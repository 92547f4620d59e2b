// Runs every test of CrmTest.kt as a JUnit 5 dynamic test, so Surefire reports each by name.
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory

class GuanxiTest {
    @TestFactory
    fun everyCall(): List<DynamicTest> = tests.map { (name, test) -> DynamicTest.dynamicTest(name) { test() } }
}
