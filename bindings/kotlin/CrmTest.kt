// Kotlin tests of the guanxi bindings generated from the library under test (see run-tests.sh).
import guanxi.*
import java.math.BigDecimal
import java.nio.file.Files
import java.time.Instant
import java.time.LocalDate
import java.util.UUID
import kotlin.system.exitProcess

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

fun huawei(crm: Crm): Customer = crm.createCustomer(
    NewCustomer(
        name = " 华为技术有限公司 ",
        province = "广东",
        city = "深圳市",
        tags = listOf("VIP"),
        contacts = listOf(NewContact(name = "张伟", phones = listOf("+86 138-1234-5678"))),
    )
)

val tests: List<Pair<String, () -> Unit>> = listOf(
    "create, get, update and list" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            check(c.name == "华为技术有限公司") { "name ${c.name}" }
            check(c.code.startsWith("C") && c.code.length == 12) { "code ${c.code}" }
            check(c.province == "广东省") { "province ${c.province}" }
            check(c.status == LifecycleStatus.POTENTIAL && c.version == 1UL) { "status ${c.status}" }
            check(crm.customer(c.id) == c) { "get by id" }
            check(crm.customerByCode(c.code) == c) { "get by code" }
            val updated = crm.updateCustomer(c.id, c.version, CustomerPatch(status = LifecycleStatus.CUSTOMER))
            check(updated.version == 2UL && updated.status == LifecycleStatus.CUSTOMER) { "update $updated" }
            crm.createCustomer(NewCustomer(name = "腾讯", province = "广东"))
            val vips = crm.listCustomers(CustomerFilter(tags = listOf("VIP")))
            check(vips.map { it.code } == listOf(c.code)) { "list by tag $vips" }
            check(crm.countCustomers(CustomerFilter(province = "广东")) == 2UL) { "count by province" }
            check(crm.contacts(c.id).single().phones == listOf("+8613812345678")) { "phone normalized" }
        }
    },
    "validation failure is a typed exception naming the field" to {
        Crm.inMemory("alice").use { crm ->
            val e = assertThrows<CrmException.Validation> {
                crm.createCustomer(NewCustomer(name = "", contacts = listOf(NewContact(name = "李娜", phones = listOf("12345")))))
            }
            check(e.field == "name") { "field ${e.field}" }
            check(e.errors.map { it.field } == listOf("name", "contacts[0].phones[0]")) { "errors ${e.errors}" }
            check(crm.countCustomers(CustomerFilter()) == 0UL) { "nothing written" }
        }
    },
    "a stale version is a conflict and changes nothing" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            crm.updateCustomer(c.id, 1UL, CustomerPatch(name = "新名字"))
            val e = assertThrows<CrmException.Conflict> { crm.updateCustomer(c.id, 1UL, CustomerPatch(name = "过期")) }
            check(e.expected == 1UL && e.actual == 2UL) { "conflict $e" }
            check(crm.customer(c.id).name == "新名字") { "unchanged" }
            assertThrows<CrmException.NotFound> { crm.customer(UUID.randomUUID()) }
        }
    },
    "native types: UUID, Instant, BigDecimal, LocalDate" to {
        Crm.inMemory("alice").use { crm ->
            crm.defineCustomField(CustomField(entity = "customer", key = "budget", label = "预算", fieldType = FieldType.DECIMAL))
            val before = Instant.now().minusSeconds(5)
            val c = crm.createCustomer(
                NewCustomer(name = "甲", custom = mapOf("budget" to CustomValue.Decimal(BigDecimal("1200000.50"))))
            )
            check(c.id.version() == 7) { "uuid v7" }
            check(c.createdAt.isAfter(before)) { "instant ${c.createdAt}" }
            val budget = c.custom["budget"] as CustomValue.Decimal
            check(budget.value.compareTo(BigDecimal("1200000.5")) == 0) { "decimal ${budget.value}" }
            val i = crm.logInteraction(
                c.id,
                NewInteraction(kind = InteractionKind.VISIT, content = "拜访", nextContactOn = LocalDate.of(2031, 1, 2))
            )
            check(i.nextContactOn == LocalDate.of(2031, 1, 2) && i.author == "alice") { "interaction $i" }
            check(crm.interactions(c.id) == listOf(i)) { "interactions" }
        }
    },
    "events reach a Kotlin listener after commit" to {
        Crm.inMemory("alice").use { crm ->
            val seen = mutableListOf<String>()
            val id = crm.subscribe(object : EventListener {
                override fun onEvent(event: Event) {
                    seen.add(event.name)
                }
            })
            val c = huawei(crm)
            check(seen == listOf("customer_created", "tag_added", "contact_added")) { "events $seen" }
            check(crm.unsubscribe(id)) { "unsubscribe" }
            crm.addTag(c.id, "重点")
            check(seen.size == 3) { "no events after unsubscribe" }
        }
    },
    "the audit chain verifies, and backups restore" to {
        val dir = Files.createTempDirectory("guanxi")
        Crm.open(dir.resolve("crm.db").toString(), "alice").use { crm ->
            huawei(crm)
            val check = crm.verifyAudit()
            check(check.intact && check.entries == 2UL && check.head?.length == 64) { "audit $check" }
            val copy = crm.backup(dir.resolve("backup.db").toString())
            check(copy.intact && copy.entries == 3UL) { "backup $copy" }
            assertThrows<CrmException.InvalidState> { crm.backup(dir.resolve("backup.db").toString()) }
        }
        val restored = restoreBackup(dir.resolve("backup.db").toString(), dir.resolve("restored.db").toString())
        check(restored.intact) { "restored $restored" }
        Crm.open(dir.resolve("restored.db").toString(), "bob").use { again ->
            check(again.countCustomers(CustomerFilter()) == 1UL) { "restored rows" }
            check(again.verifyAudit().intact) { "restored chain" }
        }
    },
    "contacts, tags, custom fields and the timeline" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            val li = crm.addContact(c.id, NewContact(name = "李娜", phones = listOf("139 0000 1111"), role = DecisionRole.EVALUATOR))
            val updated = crm.updateContact(li.id, li.version, ContactPatch(title = "采购经理", clearRole = true))
            check(updated.title == "采购经理" && updated.role == null && updated.version == 2UL) { "update $updated" }
            assertThrows<CrmException.Conflict> { crm.updateContact(li.id, li.version, ContactPatch(title = "过期")) }
            check(crm.setPrimaryContact(li.id).primary) { "set primary" }
            crm.removeContact(li.id, crm.contacts(c.id).first { it.id == li.id }.version)
            check(crm.contacts(c.id).map { it.name to it.primary } == listOf("张伟" to true)) { "after remove" }
            crm.defineTag("重点", "等级")
            check(crm.tags().map { it.name to it.group } == listOf("VIP" to null, "重点" to "等级")) { "tags ${crm.tags()}" }
            crm.defineCustomField(CustomField(entity = "contact", key = "wechat", label = "微信", fieldType = FieldType.TEXT))
            check(crm.customFields("contact").map { it.key } == listOf("wechat")) { "custom fields" }
            crm.logInteraction(c.id, NewInteraction(kind = InteractionKind.CALL, content = "电话"))
            val kinds = crm.timeline(c.id).map { if (it.interaction != null) "interaction" else it.change!!.entity }
            check(kinds.first() == "customer" && kinds.last() == "interaction") { "timeline $kinds" }
        }
    },
    "password hashing and RFC 6238 TOTP" to {
        val phc = hashPassword("correct horse battery staple")
        check(phc.startsWith("\$argon2id\$")) { "phc $phc" }
        check(verifyPassword("correct horse battery staple", phc) && !verifyPassword("wrong", phc)) { "verify" }
        val e = assertThrows<CrmException.Validation> { verifyPassword("x", "not a hash") }
        check(e.field == "password_hash") { "field ${e.field}" }
        val secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238's "12345678901234567890"
        check(totpCode(secret, Instant.ofEpochSecond(59), 8u, TotpAlgorithm.SHA1) == "94287082") { "rfc vector" }
        check(verifyTotp(secret, "94287082", Instant.ofEpochSecond(89), 8u, TotpAlgorithm.SHA1, 1u)) { "drift" }
        check(!verifyTotp(secret, "94287082", Instant.ofEpochSecond(89), 8u, TotpAlgorithm.SHA1, 0u)) { "no drift" }
    },
    "roles, scopes, masking, elevation and explain" to {
        Crm.inMemory("root").use { crm ->
            val root = crm.elevated(Instant.now().plusSeconds(600))
            root.putDepartment(Department(id = "east", name = "华东", parent = null))
            root.putDepartment(Department(id = "sh", name = "上海", parent = "east"))
            root.putUser(User("root", "管理员", null, listOf("administrator"), listOf(), true))
            root.putUser(User("li", "李经理", "east", listOf("sales_manager"), listOf(), true))
            root.putUser(User("wang", "王伟", "sh", listOf("sales_rep"), listOf(), true))
            root.putUser(User("ma", "马", null, listOf("marketing"), listOf(), true))
            val wang = crm.asUser("wang")
            val mine = wang.createCustomer(NewCustomer(name = "王的客户", contacts = listOf(NewContact(name = "张伟", phones = listOf("13812345678")))))
            val other = root.createCustomer(NewCustomer(name = "总部客户"))
            check(wang.listCustomers(CustomerFilter()).map { it.code } == listOf(mine.code)) { "own scope" }
            check(crm.asUser("li").countCustomers(CustomerFilter()) == 1UL) { "department scope" }
            val denied = assertThrows<CrmException.PermissionDenied> { wang.customer(other.id) }
            check(denied.action == "read") { "action ${denied.action}" }
            val why = wang.explain("read", "customer", other.id, null)
            check(!why.allowed && why.reasons[0].contains("owned by root")) { "explain $why" }
            val ma = crm.asUser("ma")
            check(ma.contacts(mine.id).single().phones == listOf("138****5678")) { "masked" }
            val li = crm.asUser("li")
            val needs = assertThrows<CrmException.ElevationRequired> { li.exportCustomers(CustomerFilter()) }
            check(needs.action == "export") { "action ${needs.action}" }
            check(li.elevated(Instant.now().plusSeconds(600)).exportCustomers(CustomerFilter()).size == 1) { "export" }
            root.putRole(Role("south", "华南只读", listOf(Grant("customer", listOf("read"), "region")), listOf(FieldRule("contact", "emails", "hidden"))))
            check(root.accessModel().roles.map { it.id } == listOf("south")) { "custom role" }
            assertThrows<CrmException.ElevationRequired> { crm.asUser("root").removeRole("south") }
            root.removeRole("south")
            check(root.verifyAudit().intact) { "audit" }
        }
    },
    "field encryption, blind index and key rotation" to {
        val dir = Files.createTempDirectory("guanxi")
        val path = dir.resolve("crm.db").toString()
        val key = generateFieldKey()
        val newKey = generateFieldKey()
        Crm.openEncrypted(path, "admin", key).use { crm ->
            crm.createCustomer(NewCustomer(name = "甲", contacts = listOf(NewContact(name = "张伟", phones = listOf("138 1234 5678"), idNumber = "11010519491231002x"))))
            check(crm.findContactsByPhone("13812345678").single().name == "张伟") { "lookup" }
            check(crm.findContactsByIdNumber("11010519491231002X").single().idNumber == "11010519491231002X") { "id lookup" }
            check(crm.elevated(Instant.now().plusSeconds(600)).rotateFieldKey(newKey) == 1UL) { "rotate" }
        }
        val wrong = assertThrows<CrmException.Encryption> { Crm.openEncrypted(path, "admin", key) }
        check(wrong.kind == "wrong_key") { "kind ${wrong.kind}" }
        Crm.openEncrypted(path, "admin", newKey).use { crm ->
            check(crm.findContactsByPhone("13812345678").single().phones == listOf("+8613812345678")) { "after rotation" }
            check(crm.findContactsByIdNumber("11010519491231002X").size == 1) { "id lookup after rotation" }
        }
    },
    "handles close with use {} and files persist" to {
        val dir = Files.createTempDirectory("guanxi")
        val path = dir.resolve("crm.db").toString()
        val crm = Crm.open(path, "alice")
        val code = crm.use { huawei(it).code }
        assertThrows<IllegalStateException> { crm.customerByCode(code) }
        Crm.open(path, "bob").use { again ->
            val c = again.customerByCode(code)
            check(c.createdBy == "alice") { "created by ${c.createdBy}" }
            check(again.changeLog(c.id.toString()).map { it.action } == listOf("create")) { "change log" }
        }
    },
)

fun main() {
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            passed++
            println("PASS $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
        }
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) exitProcess(1)
}
